package dhis2

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestNoCredentialsLeak: a hostile or chatty server echoes the Authorization header and the
// secrets back in every place the client keeps text; none of it may reach errors, results
// or log records.
func TestNoCredentialsLeak(t *testing.T) {
	basic := base64.StdEncoding.EncodeToString([]byte(testUser + ":" + testPassword))
	for _, auth := range []string{"basic", "token"} {
		secrets := []string{testPassword, basic}
		if auth == "token" {
			secrets = []string{testToken}
		}
		t.Run(auth, func(t *testing.T) {
			var logs bytes.Buffer
			logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			f := newFake(t)
			echo := func(status int, wrap func(h string) string) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Type", jsonCT)
					w.WriteHeader(status)
					fmt.Fprint(w, wrap(r.Header.Get("Authorization")))
				}
			}
			q := func(s string) string { b, _ := json.Marshal(s); return string(b) }
			leakAll := func(h string) string {
				return h + " / " + strings.Join(secrets, " / ")
			}
			f.handle("POST /api/dataValueSets", sequence(
				echo(500, func(h string) string {
					return `{"httpStatus":"Internal Server Error","httpStatusCode":500,"status":"ERROR","message":` + q(leakAll(h)) + `}`
				}),
				echo(409, func(h string) string {
					return `{"httpStatus":"Conflict","httpStatusCode":409,"status":"ERROR","message":"x","response":{"responseType":"ImportSummary",
					 "status":"ERROR","description":` + q(leakAll(h)) + `,"importCount":{"imported":0,"updated":0,"ignored":0,"deleted":0},
					 "conflicts":[{"object":"o","value":` + q(leakAll(h)) + `}]}}`
				}),
				echo(409, func(h string) string {
					return `{"httpStatus":"Conflict","httpStatusCode":409,"status":"WARNING","message":"x","response":{"responseType":"ImportSummary",
					 "status":"WARNING","description":` + q(leakAll(h)) + `,"importCount":{"imported":0,"updated":0,"ignored":1,"deleted":0},
					 "conflicts":[{"object":"o","value":` + q(leakAll(h)) + `,"errorCode":"E7610","indexes":[0]}]}}`
				}),
				echo(302, func(h string) string { return leakAll(h) }),
				echo(401, func(h string) string { return "<html><head><title>" + leakAll(h) + "</title></head></html>" }),
			))
			cfgMod := func(c *Config) { c.Logger = logger }
			if auth == "token" {
				cfgMod = func(c *Config) { c.Logger, c.Username, c.Password, c.Token = logger, "", "", testToken }
			}
			c := newTestClient(t, f.url(), cfgMod)

			var kept []string
			for range 5 {
				r, err := c.ImportDataValues(context.Background(), jsonPayload(), ImportOptions{})
				if err != nil {
					kept = append(kept, err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err))
					if e, ok := err.(*Error); ok {
						kept = append(kept, e.Message, string(e.Body))
						if e.Result != nil {
							r = e.Result
						}
					}
				}
				if r != nil {
					js, _ := json.Marshal(r)
					kept = append(kept, string(r.Raw), string(js), r.Description)
				}
			}
			cfg := Config{BaseURL: f.url(), Username: testUser, Password: testPassword}
			tokenCfg := Config{BaseURL: f.url(), Token: testToken}
			kept = append(kept, logs.String(), c.String(), fmt.Sprintf("%v %+v %#v", c, c, c),
				fmt.Sprint(cfg), fmt.Sprintf("%+v %#v", cfg, tokenCfg))
			var cfgLog bytes.Buffer
			slog.New(slog.NewJSONHandler(&cfgLog, nil)).Info("config", "cfg", cfg, "token", tokenCfg, "client", c)
			kept = append(kept, cfgLog.String())

			all := strings.Join(kept, "\n")
			for _, secret := range append(secrets, testPassword, testToken) {
				if strings.Contains(all, secret) {
					t.Errorf("secret %q leaked in:\n%s", secret, all)
				}
			}
			if !strings.Contains(all, "[REDACTED]") {
				t.Error("nothing was redacted: did the server echo anything?")
			}
			if !strings.Contains(logs.String(), "dhis2 request") {
				t.Error("no request was logged")
			}
		})
	}
}

// TestNoCredentialsInTransportErrors: a URL error names the endpoint without user info.
func TestNoCredentialsInTransportErrors(t *testing.T) {
	c := newTestClient(t, "http://127.0.0.1:1/hmis", func(c *Config) { c.Timeout = time.Second })
	_, err := c.SystemInfo(context.Background())
	wantKind(t, err, KindTransient)
	if strings.Contains(err.Error(), testPassword) {
		t.Errorf("secret in %q", err)
	}
}

// TestRedactJSONEscaped: a secret that JSON escapes is redacted in its escaped form too.
func TestRedactJSONEscaped(t *testing.T) {
	const pw = `pa"ss\word<&>`
	c := newTestClient(t, "http://x", func(c *Config) { c.Password = pw })
	esc, _ := json.Marshal(pw)
	got := c.redact(`{"message":` + string(esc) + `,"plain":"` + pw + `"}`)
	if strings.Contains(got, `pa\"ss\\word`) || strings.Contains(got, pw) {
		t.Errorf("redact = %s", got)
	}
}
