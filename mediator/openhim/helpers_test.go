package openhim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tally-hmis/tally/mediator/openhim"
	"github.com/tally-hmis/tally/mediator/openhim/openhimtest"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

// newCore starts a fake core that fails the test if Tally called an unknown endpoint.
func newCore(t *testing.T, opts ...openhimtest.Option) *openhimtest.Server {
	t.Helper()
	core := openhimtest.NewServer(opts...)
	t.Cleanup(func() {
		core.Close()
		for _, r := range core.Unexpected() {
			t.Errorf("unexpected request to the fake core: %s %s", r.Method, r.Path)
		}
	})
	return core
}

// coreConfig is a valid Config pointing at core as root.
func coreConfig(core *openhimtest.Server) openhim.Config {
	cfg := openhim.DefaultConfig()
	cfg.URL = core.URL
	cfg.Password = openhimtest.RootPassword
	return cfg
}

func newClient(t *testing.T, cfg openhim.Config) *openhim.Client {
	t.Helper()
	c, err := openhim.NewClient(cfg)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	return c
}

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// postJSON sends body to the core as root with Basic auth and returns status and text.
func postJSON(t *testing.T, core *openhimtest.Server, method, path string, body any) (int, string) {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(testContext(t), method, core.URL+path, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(openhimtest.RootEmail, openhimtest.RootPassword)
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	text, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(text)
}

// golden compares got with testdata/name, rewriting it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(bytes.TrimSpace(got), bytes.TrimSpace(want)) {
		t.Errorf("%s differs from golden file:\n got: %s\nwant: %s", name, got, want)
	}
}

func indentJSON(t *testing.T, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
