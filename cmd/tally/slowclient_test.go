package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The slow-client attack of issue #18 against the real binary: with its file descriptors
// limited to 128, more clients than it can hold send headers and then a body one byte at a
// time, never finishing. Unauthenticated ones are answered 401 before their body is read and
// let go; these carry a source's token, so their bodies are read. http.body_timeout cuts
// them (and http.max_concurrent_ingests answers the rest 503), so /readyz and a legitimate
// ingest still get through; with a body_timeout of 10 minutes they do not.
func TestSlowClientsDoNotStarveTheRealBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash to lower the file-descriptor limit with")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "tally")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg := filepath.Join(dir, "tally.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`http: {addr: %q, body_timeout: 300ms}
nats: {store_dir: %q}
admin: {token: %s}
sources:
  - {name: cht, auth: {tokens: [%s]}, id_schemes: {id_scheme: CODE}}
targets:
  - {name: hmis, url: "http://127.0.0.1:9", username: admin, password: district}
log: {level: error}
`, addr, filepath.Join(dir, "nats"), testAdmin, testCHT)), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bash, "-c", `ulimit -n 128 && exec "$0" serve --config "$1"`, bin, cfg)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Signal(os.Interrupt); _ = cmd.Wait() })
	base := "http://" + addr
	ready := func() bool {
		c := &http.Client{Timeout: 2 * time.Second}
		resp, err := c.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	for !ready() {
		if ctx.Err() != nil {
			t.Fatal("tally never became ready")
		}
		time.Sleep(50 * time.Millisecond)
	}

	// 300 slow clients, more than the descriptors left: each sends its headers and then a
	// byte every 100 ms (slower than 4 KiB per body_timeout), until the test ends.
	stop := make(chan struct{})
	defer close(stop)
	var dialed sync.WaitGroup
	for range 300 {
		dialed.Add(1)
		go func() {
			conn, err := net.Dial("tcp", addr)
			dialed.Done()
			if err != nil {
				return
			}
			defer conn.Close()
			_, _ = io.WriteString(conn, "POST /ingest/cht HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"+
				"Authorization: Bearer "+testCHT+"\r\nContent-Length: 1000000\r\n\r\n")
			for {
				select {
				case <-stop:
					return
				case <-time.After(100 * time.Millisecond):
				}
				if _, err := conn.Write([]byte(" ")); err != nil {
					return
				}
			}
		}()
	}
	dialed.Wait()
	// Legitimate requests get through while the slow clients hold on.
	deadline := time.Now().Add(30 * time.Second)
	served := 0
	for served < 3 && time.Now().Before(deadline) {
		req, _ := http.NewRequest("POST", base+"/ingest/cht", strings.NewReader(
			`{"dataValues":[{"dataElement":"EPI_BCG","period":"202401","orgUnit":"KL_N_F1","categoryOptionCombo":"F_LT1","value":"1"}]}`))
		req.Header.Set("Authorization", "Bearer "+testCHT)
		req.Header.Set("Content-Type", "application/json")
		c := &http.Client{Timeout: 5 * time.Second}
		if resp, err := c.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusAccepted && ready() {
				served++
			}
		}
	}
	if served < 3 {
		t.Fatalf("only %d legitimate ingests and readiness checks got through the slow clients in 30 s", served)
	}
}
