package mediator_test

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tally-hmis/tally/adapters/dhis2/dhis2test"
)

const oneValue = `{"dataValues":[{"dataElement":"EPI_BCG","period":"202401","orgUnit":"KL_N_F1","categoryOptionCombo":"F_LT1","value":"5"}]}`

// hardenedYAML is a configuration with the http: section and the cht source's extra keys
// given.
func hardenedYAML(dir, target, httpSection, chtExtra string) string {
	return fmt.Sprintf(`nats: {store_dir: %q}
admin: {token: %s}
http: {%s}
sources:
  - name: cht
    auth: {tokens: [%s]}
    id_schemes: {id_scheme: CODE}
%s
targets:
  - {name: hmis, url: %q, username: admin, password: district}
`, dir, adminToken, httpSection, chtToken, chtExtra, target)
}

// Without credentials, an unknown source and a known one get the same 401: the names of
// the sources cannot be found by trying.
func TestUnknownAndKnownSourcesAnswerAlike(t *testing.T) {
	emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
	defer emu.Close()
	dir := t.TempDir()
	h := startYAML(t, hardenedYAML(dir, emu.URL, "", ""), dir, false)
	known, kb := h.post("/ingest/cht", "application/json", "", []byte(oneValue))
	unknown, ub := h.post("/ingest/nosuch", "application/json", "", []byte(oneValue))
	wrong, _ := h.post("/ingest/nosuch", "application/json", "Bearer "+chtToken, []byte(oneValue))
	if known != http.StatusUnauthorized || unknown != http.StatusUnauthorized || wrong != http.StatusUnauthorized {
		t.Fatalf("known %d, unknown %d, unknown with a valid token %d: want 401 each", known, unknown, wrong)
	}
	if strings.Replace(fmt.Sprint(ub), "nosuch", "cht", 1) != fmt.Sprint(kb) {
		t.Errorf("the answers differ beyond the name: %v / %v", kb, ub)
	}
}

// rawRequest writes a request's head (and as much body as given) on a new connection and
// returns it, for the cases a well-behaved client never produces.
func rawRequest(t *testing.T, base, head string, body []byte) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write(body); err != nil {
		t.Fatal(err)
	}
	return conn
}

// readStatus reads the status line of the answer on conn, within a bound that only a hung
// server reaches.
func readStatus(t *testing.T, conn net.Conn) (int, http.Header) {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header
}

// A Content-Length over http.max_body_bytes is refused at once: the server answers 413
// without waiting for (or reading) a byte of the body.
func TestDeclaredLengthOverTheLimitIsRefusedBeforeReading(t *testing.T) {
	emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
	defer emu.Close()
	dir := t.TempDir()
	h := startYAML(t, hardenedYAML(dir, emu.URL, "max_body_bytes: 64KiB", ""), dir, false)
	conn := rawRequest(t, h.base, "POST /ingest/cht HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"+
		"Authorization: Bearer "+chtToken+"\r\nContent-Length: 268435456\r\n\r\n", nil)
	if code, _ := readStatus(t, conn); code != http.StatusRequestEntityTooLarge {
		t.Fatalf("HTTP %d, want 413 before the body", code)
	}
	if n := h.svc; n == nil {
		t.Fatal("service gone")
	}
}

// A body must keep arriving: a client that sends its headers and a few bytes, then nothing,
// is cut off after http.body_timeout rather than holding its connection.
func TestStalledBodyIsCutOff(t *testing.T) {
	emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
	defer emu.Close()
	dir := t.TempDir()
	h := startYAML(t, hardenedYAML(dir, emu.URL, "body_timeout: 200ms", ""), dir, false)
	conn := rawRequest(t, h.base, "POST /ingest/cht HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"+
		"Authorization: Bearer "+chtToken+"\r\nContent-Length: 100000\r\n\r\n", []byte(`{"dataValues":[`))
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	switch {
	case err == nil:
		resp.Body.Close()
		if resp.StatusCode < 400 {
			t.Fatalf("HTTP %d for a body that stopped arriving", resp.StatusCode)
		}
	case isTimeout(err):
		t.Fatal("the server still waits for the stalled body")
	}
	// Either an error answer or a closed connection: the server let go.
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// One payload more than http.max_concurrent_ingests is answered 503 with Retry-After while
// the others are read; once they are done, ingest answers again.
func TestConcurrentIngestsAreBounded(t *testing.T) {
	emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
	defer emu.Close()
	dir := t.TempDir()
	h := startYAML(t, hardenedYAML(dir, emu.URL, "max_concurrent_ingests: 1", ""), dir, false)
	// The first holds the only slot: its body comes in two parts, the second when the test
	// says.
	pr, pw := io.Pipe()
	req, _ := http.NewRequest("POST", h.base+"/ingest/cht", pr)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+chtToken)
	done := make(chan int, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	if _, err := io.WriteString(pw, oneValue[:20]); err != nil { // the slot is taken once the body is being read
		t.Fatal(err)
	}
	var code int
	var hdr http.Header
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); {
		select {
		case c := <-done:
			t.Fatalf("the first ingest ended (HTTP %d) while its body was still open", c)
		default:
		}
		code, hdr = postCHT(t, h)
		if code == http.StatusServiceUnavailable {
			break
		}
		time.Sleep(10 * time.Millisecond) // the first request may not have reached the handler yet
	}
	if code != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" {
		t.Fatalf("second ingest: HTTP %d Retry-After %q, want 503 with Retry-After", code, hdr.Get("Retry-After"))
	}
	_, _ = io.WriteString(pw, oneValue[20:])
	pw.Close()
	if c := <-done; c != http.StatusAccepted {
		t.Fatalf("first ingest: HTTP %d", c)
	}
	if c, b := h.post("/ingest/cht", "application/json", "Bearer "+chtToken, []byte(strings.Replace(oneValue, `"5"`, `"6"`, 1))); c != http.StatusAccepted {
		t.Fatalf("after the first: HTTP %d %v", c, b)
	}
}

// A source over its rate_limit gets 429 with Retry-After.
func TestSourceRateLimit(t *testing.T) {
	emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
	defer emu.Close()
	dir := t.TempDir()
	h := startYAML(t, hardenedYAML(dir, emu.URL, "", "    rate_limit: {per_second: 0.01, burst: 1}"), dir, false)
	if c, b := h.post("/ingest/cht", "application/json", "Bearer "+chtToken, []byte(oneValue)); c != http.StatusAccepted {
		t.Fatalf("first: HTTP %d %v", c, b)
	}
	if code, hdr := postCHT(t, h); code != http.StatusTooManyRequests || hdr.Get("Retry-After") == "" {
		t.Fatalf("second: HTTP %d Retry-After %q, want 429 with Retry-After", code, hdr.Get("Retry-After"))
	}
}

// postCHT posts oneValue as source cht and returns the status and headers of the answer.
func postCHT(t *testing.T, h *harness) (int, http.Header) {
	t.Helper()
	req, _ := http.NewRequest("POST", h.base+"/ingest/cht", strings.NewReader(oneValue))
	req.Header.Set("Authorization", "Bearer "+chtToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header
}

// Deleting needs allow_delete; the allow-lists refuse what they do not name. Each refusal is
// a 403 that names what is not allowed and the key that governs it, and stores nothing.
func TestSourcePermissions(t *testing.T) {
	emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
	defer emu.Close()
	dir := t.TempDir()
	h := startYAML(t, hardenedYAML(dir, emu.URL, "", "    allow: {org_units: [KL_N_F1]}\n    stored_by: cht-app"), dir, false)
	for _, tc := range []struct {
		name, path, body, want string
	}{
		{"DELETE strategy", "/ingest/cht?importStrategy=DELETE", oneValue, "allow_delete"},
		{"a value marked deleted", "/ingest/cht", strings.Replace(oneValue, `"value":"5"`, `"value":"5","deleted":true`, 1), "data value 0 is marked deleted"},
		{"an org unit not allowed", "/ingest/cht", strings.Replace(oneValue, "KL_N_F1", "KL_N_F2", 1), `org unit "KL_N_F2" is not among the org units`},
	} {
		code, body := h.post(tc.path, "application/json", "Bearer "+chtToken, []byte(tc.body))
		if msg, _ := body["message"].(string); code != http.StatusForbidden || !strings.Contains(msg, tc.want) {
			t.Errorf("%s: HTTP %d %v, want 403 naming %q", tc.name, code, body, tc.want)
		}
	}
	// On the DHIS2-compatible endpoint too.
	req, _ := http.NewRequest("POST", h.base+"/api/dataValueSets?importStrategy=DELETE&idScheme=CODE", strings.NewReader(oneValue))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+chtToken)
	if code, body := h.do(req); code != http.StatusForbidden {
		t.Errorf("/api/dataValueSets DELETE: HTTP %d %v", code, body)
	}
	if code, body := h.post("/ingest/cht", "application/json", "Bearer "+chtToken, []byte(oneValue)); code != http.StatusAccepted {
		t.Errorf("an allowed payload: HTTP %d %v", code, body)
	} else {
		h.waitStatus(body["transaction"].(string), "delivered")
	}
	// The source's stored_by is what DHIS2 records as storedBy for values that name none.
	if v, ok := emu.Lookup("EPI_BCG", "202401", "KL_N_F1", "F_LT1", ""); !ok || v.StoredBy != "cht-app" {
		t.Errorf("stored value = %+v, %v; want storedBy cht-app", v, ok)
	}
}

// writeCert writes a self-signed certificate for 127.0.0.1 with the given common name.
func writeCert(t *testing.T, dir, cn string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	// Written beside and renamed, as a certificate manager does, so a reader never sees half.
	for file, block := range map[string]*pem.Block{certFile: {Type: "CERTIFICATE", Bytes: der}, keyFile: {Type: "EC PRIVATE KEY", Bytes: kb}} {
		if err := os.WriteFile(file+".new", pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(file+".new", file); err != nil {
			t.Fatal(err)
		}
	}
	return certFile, keyFile
}

// The listener serves TLS from cert_file and key_file and picks up a renewed pair without a
// restart.
func TestTLSListenerReloadsItsCertificate(t *testing.T) {
	emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
	defer emu.Close()
	dir := t.TempDir()
	certFile, keyFile := writeCert(t, dir, "first")
	h := startYAML(t, hardenedYAML(dir, emu.URL, fmt.Sprintf("tls: {cert_file: %q, key_file: %q}", certFile, keyFile), ""), dir, false)
	addr := strings.TrimPrefix(h.base, "http://")
	served := func() string {
		t.Helper()
		conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) // the test checks which certificate, not trust
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /healthz over TLS: %v %v", resp, err)
		}
		resp.Body.Close()
		return conn.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	if cn := served(); cn != "first" {
		t.Fatalf("serves %q, want first", cn)
	}
	writeCert(t, dir, "renewed")
	if cn := served(); cn != "renewed" {
		t.Fatalf("after renewal serves %q, want renewed", cn)
	}
	// Plain HTTP on the TLS port is refused.
	resp, err := http.Get(h.base + "/healthz")
	if err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK && bytes.Contains(body, []byte(`"ok"`)) {
			t.Error("plain HTTP served on the TLS listener")
		}
	}
}
