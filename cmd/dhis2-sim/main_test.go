package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tally-hmis/tally/adapters/dhis2/dhis2test"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startSim(t *testing.T, args ...string) (string, *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	errc := make(chan error, 1)
	var out, logs syncBuffer
	go func() { errc <- run(ctx, append([]string{"--addr", "127.0.0.1:0"}, args...), &out, &logs, ready) }()
	var addr string
	select {
	case addr = <-ready:
	case err := <-errc:
		t.Fatalf("run: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("dhis2-sim did not start")
	}
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	return addr, &out
}

func get(t *testing.T, url, user, pass string) (int, string) {
	t.Helper()
	return send(t, http.MethodGet, url, user, pass, "", "")
}

// send makes one request straight through the transport (no client
// defaults) and returns the status and body.
func send(t *testing.T, method, url, user, pass, contentType, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	res, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func TestSimServesSample(t *testing.T) {
	addr, out := startSim(t, "--version", "2.41", "--base-path", "/dhis")
	code, body := get(t, "http://"+addr+"/dhis/api/system/info", dhis2test.SampleUser, dhis2test.SamplePassword)
	if code != 200 || !strings.Contains(body, `"version":"2.41.0"`) {
		t.Errorf("%d %s", code, body)
	}
	for _, want := range []string{"listening on http://" + addr + "/dhis", dhis2test.SampleUser + " / " + dhis2test.SamplePassword, dhis2test.SampleToken, "/__sim/"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	if code, body := get(t, "http://"+addr+"/__sim/health", "", ""); code != 200 || body != "ok" {
		t.Errorf("admin health %d %s", code, body)
	}
}

func TestSimMetadataFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.yaml")
	if err := os.WriteFile(path, dhis2test.SampleMetadataYAML(), 0o600); err != nil {
		t.Fatal(err)
	}
	addr, _ := startSim(t, "--metadata", path)
	if code, _ := get(t, "http://"+addr+"/api/me", dhis2test.SampleUser, dhis2test.SamplePassword); code != 200 {
		t.Errorf("me: %d", code)
	}
}

func TestSimBadFlags(t *testing.T) {
	var out, errs bytes.Buffer
	for _, args := range [][]string{{"--version", "1.0"}, {"--metadata", "/nonexistent.yaml"}, {"--bogus"}, {"extra"}, {"--log-level", "loud"}} {
		if err := run(context.Background(), args, &out, &errs, nil); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
	errs.Reset()
	if err := run(context.Background(), []string{"--help"}, &out, &errs, nil); !errors.Is(err, flag.ErrHelp) || !strings.Contains(errs.String(), "Example:") {
		t.Errorf("help: %v\n%s", err, errs.String())
	}
}

// --now moves the emulator's clock: relative periods in analytics resolve against it, so
// the sample's 2024 facts answer LAST_12_MONTHS as they would have in January 2025.
func TestSimNowMovesRelativePeriods(t *testing.T) {
	addr, _ := startSim(t, "--now", "2025-01-15")
	url := "http://" + addr + "/api/analytics/dataValueSet.json?dimension=dx:PI_BCG_F_LT1&dimension=pe:LAST_12_MONTHS&dimension=ou:KL_N_F1&inputIdScheme=CODE&outputIdScheme=CODE"
	code, body := get(t, url, dhis2test.SampleUser, dhis2test.SamplePassword)
	if code != 200 || !strings.Contains(body, `"period":"202412"`) || strings.Contains(body, `"period":"202501"`) {
		t.Fatalf("%d %s", code, body)
	}
	var out, errs bytes.Buffer
	if err := run(context.Background(), []string{"--now", "15/01/2025"}, &out, &errs, nil); err == nil {
		t.Error("a malformed --now was accepted")
	}
}

func post(t *testing.T, url, user, pass, contentType, body string) (int, string) {
	t.Helper()
	return send(t, http.MethodPost, url, user, pass, contentType, body)
}

// A test that drives a dhis2-sim process reads the receive counts over /__sim/received.
func TestSimReceivedCounts(t *testing.T) {
	addr, _ := startSim(t)
	body := `{"dataValues":[{"dataElement":"MAL_TREATED","period":"202401","orgUnit":"KL_N_F1","attributeOptionCombo":"GOV","value":"5"}]}`
	for range 2 {
		if code, b := post(t, "http://"+addr+"/api/dataValueSets?idScheme=CODE", dhis2test.SampleUser, dhis2test.SamplePassword, "application/json", body); code != 200 && code != 409 {
			t.Fatalf("import: %d %s", code, b)
		}
	}
	code, got := get(t, "http://"+addr+"/__sim/received?duplicates=true", "", "")
	if code != 200 || !strings.Contains(got, `"keys":1,"total":2,"maxPerKey":2`) || !strings.Contains(got, `"period":"202401"`) {
		t.Errorf("%d %s", code, got)
	}
}

// --capacity turns capacity mode on with the flags' settings; /__sim/capacity reports them
// and counts the imports served.
func TestSimCapacity(t *testing.T) {
	addr, _ := startSim(t, "--capacity", "--capacity-max-concurrent", "3", "--capacity-max-queue", "-1",
		"--capacity-per-request", "1ms", "--capacity-per-value", "0", "--capacity-queue-timeout", "2s")
	body := `{"dataValues":[{"dataElement":"MAL_TREATED","period":"202401","orgUnit":"KL_N_F1","attributeOptionCombo":"GOV","value":"5"}]}`
	if code, b := post(t, "http://"+addr+"/api/dataValueSets?idScheme=CODE", dhis2test.SampleUser, dhis2test.SamplePassword, "application/json", body); code != 200 {
		t.Fatalf("import: %d %s", code, b)
	}
	code, got := get(t, "http://"+addr+"/__sim/capacity", "", "")
	for _, want := range []string{`"enabled":true`, `"maxConcurrent":3`, `"maxQueue":0`, `"perRequest":1000000`, `"perValue":0`, `"queueTimeout":2000000000`, `"served":1`, `"values":1`} {
		if code != 200 || !strings.Contains(got, want) {
			t.Errorf("%d %s lacks %s", code, got, want)
		}
	}
}
