package dhis2_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tally-hmis/tally/adapters/dhis2"
	"github.com/tally-hmis/tally/adapters/dhis2/dhis2test"
)

// Ping against the emulator's GET /api/system/ping (SystemController.ping:
// "pong", authenticated): success, then each failure class an import would
// have.
func TestPing(t *testing.T) {
	srv, c := emulator(t)
	ctx := context.Background()
	if err := c.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if r := srv.Requests(); len(r) != 1 || r[0].Path != "/dhis/api/system/ping" || r[0].Status != 200 {
		t.Errorf("requests %+v", r)
	}

	bad, err := dhis2.New(dhis2.Config{BaseURL: srv.URL, Username: dhis2test.SampleUser, Password: "wrong", Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := bad.Ping(ctx); !errors.Is(err, dhis2.ErrUnauthorized) || !errors.Is(err, dhis2.ErrPermanent) {
		t.Errorf("wrong password: %v", err)
	}

	for _, f := range []dhis2test.Fault{
		{Kind: dhis2test.FaultStatus, Status: 503},
		{Kind: dhis2test.FaultRateLimit, RetryAfter: "7"},
		{Kind: dhis2test.FaultReset},
		{Kind: dhis2test.FaultStatus, Status: 200, ContentType: "text/html", Body: "<html><title>Down for maintenance</title></html>"},
	} {
		srv.Faults().Add(dhis2test.Fault{Kind: f.Kind, Status: f.Status, RetryAfter: f.RetryAfter, ContentType: f.ContentType,
			Body: f.Body, Path: "/api/system/ping"}) // unlimited: the transport retries a reset GET once
		err := c.Ping(ctx)
		srv.Faults().Clear()
		if !errors.Is(err, dhis2.ErrTransient) {
			t.Errorf("%s %d: %v, want transient", f.Kind, f.Status, err)
		}
		var de *dhis2.Error
		if f.Kind == dhis2test.FaultRateLimit && (!errors.As(err, &de) || de.RetryAfter != 7*time.Second) {
			t.Errorf("rate limit: RetryAfter from %v", err)
		}
	}
	srv.Faults().Add(dhis2test.Fault{Kind: dhis2test.FaultStatus, Status: 302, Body: " ", Path: "/api/system/ping", Times: 1})
	if err := c.Ping(ctx); !errors.Is(err, dhis2.ErrPermanent) {
		t.Errorf("redirect: %v", err)
	}
	if err := c.Ping(ctx); err != nil {
		t.Errorf("after the faults: %v", err)
	}
	srv.Close()
	if err := c.Ping(ctx); !errors.Is(err, dhis2.ErrTransient) {
		t.Errorf("server gone: %v", err)
	}
}
