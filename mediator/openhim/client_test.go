package openhim_test

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tally-hmis/tally/mediator/openhim"
	"github.com/tally-hmis/tally/mediator/openhim/openhimtest"
)

func registerDefault(t *testing.T, c *openhim.Client, cfg openhim.Config) {
	t.Helper()
	reg, err := openhim.BuildRegistration(cfg, "1.0.0", openhim.Sources("cht"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Register(testContext(t), reg); err != nil {
		t.Fatalf("Register: %v", err)
	}
}

func TestAuthSchemes(t *testing.T) {
	const secret = "wr0ng-s3cret"
	tests := []struct {
		name     string
		coreOpts []openhimtest.Option
		auth     string
		user     string
		password string
		wantErr  error  // nil for success
		wantAuth string // scheme seen by the core on the heartbeat
	}{
		{name: "basic", auth: openhim.AuthBasic, wantAuth: "basic"},
		{name: "token", auth: openhim.AuthToken, wantAuth: "token"},
		{name: "token on a token-only core (<=7.0)", coreOpts: []openhimtest.Option{openhimtest.WithAuthTypes("token")},
			auth: openhim.AuthToken, wantAuth: "token"},
		{name: "token for a non-root user", auth: openhim.AuthToken, user: "ops@example.org", password: "ops-pw",
			coreOpts: []openhimtest.Option{openhimtest.WithUser("ops@example.org", "ops-pw")}, wantAuth: "token"},
		{name: "basic for a user without token passport", auth: openhim.AuthBasic, user: "new@example.org", password: "pw",
			coreOpts: []openhimtest.Option{openhimtest.WithUser("new@example.org", "pw", openhimtest.WithoutTokenPassport())},
			wantAuth: "basic"},
		{name: "basic wrong password", auth: openhim.AuthBasic, password: secret, wantErr: openhim.ErrUnauthorized},
		{name: "token wrong password", auth: openhim.AuthToken, password: secret, wantErr: openhim.ErrUnauthorized},
		{name: "token for a user without token passport", auth: openhim.AuthToken, user: "new@example.org", password: "pw",
			coreOpts: []openhimtest.Option{openhimtest.WithUser("new@example.org", "pw", openhimtest.WithoutTokenPassport())},
			wantErr:  openhim.ErrUnauthorized},
		{name: "token for an unknown user", auth: openhim.AuthToken, user: "nobody@example.org", password: secret,
			wantErr: openhim.ErrUnauthorized},
		{name: "basic on a token-only core", coreOpts: []openhimtest.Option{openhimtest.WithAuthTypes("token")},
			auth: openhim.AuthBasic, wantErr: openhim.ErrUnauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			core := newCore(t, tc.coreOpts...)
			cfg := coreConfig(core)
			cfg.Auth = tc.auth
			if tc.user != "" {
				cfg.Username = tc.user
			}
			if tc.password != "" {
				cfg.Password = tc.password
			}
			c := newClient(t, cfg)
			reg, err := openhim.BuildRegistration(cfg, "1.0.0", openhim.Sources("cht"))
			if err != nil {
				t.Fatal(err)
			}
			err = c.Register(testContext(t), reg)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Register = %v, want %v", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), cfg.Password) {
					t.Errorf("error reveals the password: %v", err)
				}
				if len(core.Registrations()) != 0 {
					t.Error("an unauthenticated registration reached the handler")
				}
				return
			}
			if err != nil {
				t.Fatalf("Register: %v", err)
			}
			if _, err := c.Heartbeat(testContext(t), time.Second, false); err != nil {
				t.Fatalf("Heartbeat: %v", err)
			}
			for _, r := range core.Requests() {
				if strings.HasPrefix(r.Path, "/authenticate/") {
					continue // the token challenge is public
				}
				if r.Auth != tc.wantAuth || r.User != cfg.Username {
					t.Errorf("%s %s: auth %q as %q, want %q as %q", r.Method, r.Path, r.Auth, r.User, tc.wantAuth, cfg.Username)
				}
				if tc.wantAuth == "token" && r.AuthorizationHeader {
					t.Errorf("%s %s: token scheme also sent an Authorization header", r.Method, r.Path)
				}
			}
		})
	}
}

// TestTokenUsesCoreTimestamp: the legacy scheme signs the core's own timestamp, so a client
// clock far off does not push requests out of the core's ±10 s window.
func TestTokenUsesCoreTimestamp(t *testing.T) {
	coreNow := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	core := newCore(t, openhimtest.WithNow(func() time.Time { return coreNow }))
	cfg := coreConfig(core)
	cfg.Auth = openhim.AuthToken
	skewed := openhimtest.NewClock(coreNow.Add(-3 * time.Hour))
	c, err := openhim.NewClient(cfg, openhim.WithClock(skewed))
	if err != nil {
		t.Fatal(err)
	}
	registerDefault(t, c, cfg)
}

func TestTLS(t *testing.T) {
	core := newCore(t, openhimtest.WithTLS())
	caFile, err := core.WriteCAFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "empty.pem")
	if err := os.WriteFile(bad, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		caFile    string
		insecure  bool
		newErr    string // NewClient error
		reachable bool
	}{
		{name: "CA bundle", caFile: caFile, reachable: true},
		{name: "insecure opt-in", insecure: true, reachable: true},
		{name: "neither: self-signed refused", reachable: false},
		{name: "CA file without certificates", caFile: bad, newErr: "no PEM certificates"},
		{name: "missing CA file", caFile: filepath.Join(t.TempDir(), "nope.pem"), newErr: "ca_file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := coreConfig(core)
			cfg.CAFile, cfg.InsecureSkipVerify = tc.caFile, tc.insecure
			c, err := openhim.NewClient(cfg)
			if tc.newErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.newErr) {
					t.Fatalf("NewClient = %v, want %q", err, tc.newErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			reg, _ := openhim.BuildRegistration(cfg, "1.0.0", openhim.Sources("cht"))
			err = c.Register(testContext(t), reg)
			if tc.reachable && err != nil {
				t.Fatalf("Register: %v", err)
			}
			if !tc.reachable && (err == nil || !strings.Contains(err.Error(), "certificate")) {
				t.Fatalf("Register = %v, want a certificate error", err)
			}
		})
	}
}

func TestHeartbeatConfigPush(t *testing.T) {
	core := newCore(t)
	cfg := coreConfig(core)
	c := newClient(t, cfg)

	// The core answers 404 with the Basic strategy's greeting as the body; the error must
	// not quote it as if it explained the failure.
	if _, err := c.Heartbeat(testContext(t), time.Second, true); !errors.Is(err, openhim.ErrNotFound) ||
		strings.Contains(err.Error(), "Authenticated") {
		t.Fatalf("heartbeat before registration = %v, want ErrNotFound", err)
	}

	// A mediator registered without config answers "OK" to config:true: an empty config.
	reg, _ := openhim.BuildRegistration(cfg, "1.0.0", openhim.Sources("cht"))
	reg.Config = nil
	if err := c.Register(testContext(t), reg); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name       string
		setConfig  map[string]any
		wantConfig bool
		want       map[string]any // nil: nothing new
	}{
		{name: "first beat asks", wantConfig: true, want: map[string]any{}},
		{name: "nothing changed", want: nil},
		{name: "console edit pushed once", setConfig: map[string]any{openhim.KeyLogLevel: "warn"},
			want: map[string]any{openhim.KeyLogLevel: "warn"}},
		{name: "not pushed twice", want: nil},
		{name: "asking returns it again", wantConfig: true, want: map[string]any{openhim.KeyLogLevel: "warn"}},
	}
	for _, s := range steps {
		if s.setConfig != nil {
			if err := core.SetConfig(cfg.URN, s.setConfig); err != nil {
				t.Fatal(err)
			}
		}
		got, err := c.Heartbeat(testContext(t), 12*time.Second+500*time.Millisecond, s.wantConfig)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if (got == nil) != (s.want == nil) || len(got) != len(s.want) || (s.want != nil && got[openhim.KeyLogLevel] != s.want[openhim.KeyLogLevel]) {
			t.Errorf("%s: got %v, want %v", s.name, got, s.want)
		}
	}
	hb := core.Heartbeats(cfg.URN)
	if len(hb) != 6 || hb[1].Uptime != 12.5 || !hb[1].Config || hb[2].Config || hb[1].Response != "OK" {
		t.Errorf("heartbeats recorded: %+v", hb)
	}
}

func TestUpdateTransaction(t *testing.T) {
	core := newCore(t)
	cfg := coreConfig(core)
	c := newClient(t, cfg)
	txID := core.NewTransaction(map[string]any{"orchestrations": []any{map[string]any{"name": "core: Tally cht"}}})
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	resp := openhim.NewResponse(http.StatusOK, http.Header{"Content-Type": {"application/json"}}, []byte(`{"status":"OK"}`), at)
	u := openhim.TransactionUpdate{
		Status:   openhim.StatusSuccessful,
		Response: &resp,
		Orchestrations: []openhim.Orchestration{{Name: "deliver hmis", Request: openhim.Request{
			Path: "/api/dataValueSets", Method: "POST", Headers: map[string]string{}, Timestamp: at}}},
		Properties: map[string]any{"imported": 12, "target": "hmis"},
	}
	if err := c.UpdateTransaction(testContext(t), txID, u); err != nil {
		t.Fatalf("UpdateTransaction: %v", err)
	}
	ups := core.TransactionUpdates()
	if len(ups) != 1 || ups[0].ID != txID || ups[0].Status != http.StatusOK {
		t.Fatalf("updates: %+v", ups)
	}
	golden(t, "transaction_update.golden.json", indentJSON(t, ups[0].Body))
	// A 200 proves nothing: read the record back through the API.
	rec, err := c.GetTransaction(testContext(t), txID)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Status != openhim.StatusSuccessful || fmt.Sprint(rec.OrchestrationNames()) != "[core: Tally cht deliver hmis]" ||
		rec.ResponseStatus != http.StatusOK || rec.Properties["target"] != "hmis" || rec.AutoRetry {
		t.Errorf("stored transaction: %+v", rec)
	}

	// An error in the update queues auto-retry (CORE src/api/transactions.js hasError).
	if err := c.UpdateTransaction(testContext(t), txID, openhim.TransactionUpdate{Status: openhim.StatusFailed,
		Error: &openhim.ErrorDetails{Message: "DHIS2 unreachable"}}); err != nil {
		t.Fatal(err)
	}
	if rec, err := c.GetTransaction(testContext(t), txID); err != nil || !rec.AutoRetry || rec.Error == nil ||
		rec.ResponseStatus != http.StatusOK {
		t.Errorf("error did not flag auto-retry, or the response was lost: %+v, %v", rec, err)
	}

	// The core answers an unknown id with 500.
	err = c.UpdateTransaction(testContext(t), "65f0000000000000000000ff", u)
	if !errors.Is(err, openhim.ErrUnavailable) {
		t.Errorf("unknown transaction: %v", err)
	}
	if err := c.UpdateTransaction(testContext(t), txID, openhim.TransactionUpdate{}); err == nil {
		t.Error("empty update accepted")
	}
}

func TestCoreDownErrors(t *testing.T) {
	core := newCore(t)
	cfg := coreConfig(core)
	c := newClient(t, cfg)
	core.SetDown(openhimtest.Unavailable)
	if _, err := c.Heartbeat(testContext(t), time.Second, false); !errors.Is(err, openhim.ErrUnavailable) {
		t.Errorf("503: %v", err)
	}
	core.SetDown(openhimtest.Hangup)
	_, err := c.Heartbeat(testContext(t), time.Second, false)
	var apiErr *openhim.APIError
	if err == nil || errors.As(err, &apiErr) {
		t.Errorf("hang-up: %v, want a transport error", err)
	}
}
