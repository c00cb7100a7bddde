package dhis2_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/tally-hmis/tally/adapters/dhis2"
	"github.com/tally-hmis/tally/adapters/dhis2/dhis2test"
	"github.com/tally-hmis/tally/transform"
)

// TestClientKeepsAConnectionPerConcurrentRequest sends bursts of concurrent imports with a
// pause between them, as a delivery worker pool does whenever its stream runs dry: the
// client must keep every connection it opened, so the second and third bursts open none.
// net/http keeps two idle connections per host unless told otherwise; the control case
// shows that the bursts would then open connections again (a TCP and TLS handshake each on
// a real DHIS2), so the test is not passing for want of churn.
func TestClientKeepsAConnectionPerConcurrentRequest(t *testing.T) {
	const width, bursts = 8, 3
	for _, tc := range []struct {
		name          string
		maxConcurrent int
		bounded       bool
	}{{"MaxConcurrent", width, true}, {"net/http default (control)", 0, false}} {
		t.Run(tc.name, func(t *testing.T) {
			srv := dhis2test.NewServer(dhis2test.WithT(t))
			// Each import takes long enough that a burst's requests are all in flight at once.
			srv.Faults().Add(dhis2test.Fault{Kind: dhis2test.FaultLatency, Path: "/api/dataValueSets",
				Delay: dhis2test.Duration(100 * time.Millisecond)})
			c, err := dhis2.New(dhis2.Config{BaseURL: srv.URL, Username: dhis2test.SampleUser,
				Password: dhis2test.SamplePassword, Timeout: 5 * time.Second, MaxConcurrent: tc.maxConcurrent})
			if err != nil {
				t.Fatal(err)
			}
			body := []byte(`{"dataValues":[{"dataElement":"CHW_HOUSEHOLD_VISITS","period":"202401","orgUnit":"KL_N_F1","value":"40"}]}`)
			for range bursts {
				var wg sync.WaitGroup
				for range width {
					wg.Go(func() {
						_, err := c.ImportDataValues(context.Background(), dhis2.Bytes(dhis2.ContentTypeJSON, body),
							dhis2.ImportOptions{Schemes: transform.IDSchemes{IDScheme: transform.SchemeCode}})
						if err != nil {
							t.Error(err)
						}
					})
				}
				wg.Wait()
			}
			got := srv.Connections()
			switch {
			case tc.bounded && got > width:
				t.Errorf("%d bursts of %d concurrent imports opened %d connections, want at most %d", bursts, width, got, width)
			case !tc.bounded && got <= width:
				t.Errorf("control: the default transport opened only %d connections for %d bursts of %d; the bursts no longer overlap, so the bounded case proves nothing", got, bursts, width)
			}
			t.Logf("%d connections for %d bursts of %d concurrent imports", got, bursts, width)
		})
	}
}

func TestNewRefusesANegativeMaxConcurrent(t *testing.T) {
	_, err := dhis2.New(dhis2.Config{BaseURL: "http://127.0.0.1:1", MaxConcurrent: -1})
	if err == nil {
		t.Fatal("New accepted MaxConcurrent -1")
	}
}

// TestClientClosesIdleConnectionsBeforeTheServer: the client must drop a connection it
// keeps idle before the server's keep-alive timeout does, or a request sent as the server
// closes it fails (see DefaultIdleTimeout). The server here would wait far longer than the
// test runs, so a connection closed after the import was closed by the client.
func TestClientClosesIdleConnectionsBeforeTheServer(t *testing.T) {
	srv := dhis2test.NewServer(dhis2test.WithT(t), dhis2test.WithKeepAlive(time.Hour, 0))
	c, err := dhis2.New(dhis2.Config{BaseURL: srv.URL, Username: dhis2test.SampleUser,
		Password: dhis2test.SamplePassword, IdleTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"dataValues":[{"dataElement":"CHW_HOUSEHOLD_VISITS","period":"202401","orgUnit":"KL_N_F1","value":"40"}]}`)
	if _, err := c.ImportDataValues(context.Background(), dhis2.Bytes(dhis2.ContentTypeJSON, body),
		dhis2.ImportOptions{Schemes: transform.IDSchemes{IDScheme: transform.SchemeCode}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for srv.ClosedConnections() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the client kept its idle connection for 5 s with IdleTimeout 50ms (%d open)", srv.Connections())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if dhis2.DefaultIdleTimeout >= 20*time.Second {
		t.Errorf("DefaultIdleTimeout %s is not below Tomcat's stock keep-alive timeout of 20 s", dhis2.DefaultIdleTimeout)
	}
	if _, err := dhis2.New(dhis2.Config{BaseURL: srv.URL, IdleTimeout: -time.Second}); err == nil {
		t.Error("New accepted a negative IdleTimeout")
	}
}
