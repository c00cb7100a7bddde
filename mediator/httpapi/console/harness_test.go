package console_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tally-hmis/tally/adapters/dhis2/dhis2test"
	"github.com/tally-hmis/tally/config"
	"github.com/tally-hmis/tally/mediator"
	"github.com/tally-hmis/tally/mediator/txlog"
)

// The console is tested against a real Tally (mediator.Service with its embedded
// JetStream) delivering to the DHIS2 emulator, through real HTTP.

const (
	operatorToken = "operator-token-0123456789"
	viewerToken   = "viewer-token-0123456789"
	chtToken      = "cht-token-0123456789"
)

type tally struct {
	t    testing.TB
	svc  *mediator.Service
	base string
	emu  *dhis2test.Server
}

// configYAML is a Tally with an operator (admin.token) and a read credential, source cht
// (CODE ids) and target hmis on the emulator; extra is appended (exchanges:).
func configYAML(dir, emuURL, extra string) string {
	return fmt.Sprintf(`
nats: {store_dir: %q, duplicate_window: 1h}
admin:
  token: %s
  credentials:
    - {name: viewer, token: %s, scope: read}
sources:
  - name: cht
    auth: {tokens: [%s]}
    id_schemes: {id_scheme: CODE}
targets:
  - name: hmis
    url: %s
    username: admin
    password: district
    timeout: 5s
    retry: {initial_delay: 20ms, max_delay: 100ms, max_attempts: 1000}
delivery: {ack_wait: 30s}
%s`, dir, operatorToken, viewerToken, chtToken, emuURL, extra)
}

// startTally starts the emulator (DHIS2 2.40) and Tally in front of it.
func startTally(t testing.TB, extra string) *tally {
	t.Helper()
	emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
	t.Cleanup(emu.Close)
	cfg, err := config.Parse("console-test.yaml", []byte(configYAML(t.TempDir(), emu.URL, extra)), os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	svc, err := mediator.New(cfg, mediator.Options{Listener: ln, Logger: slog.New(slog.DiscardHandler), Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = svc.Stop(ctx)
	})
	return &tally{t: t, svc: svc, base: "http://" + svc.Addr(), emu: emu}
}

// dv is a data value in codes.
type dv struct{ de, pe, ou, coc, value string }

func dvsJSON(values []dv) []byte {
	type jv struct {
		DataElement         string `json:"dataElement"`
		Period              string `json:"period"`
		OrgUnit             string `json:"orgUnit"`
		CategoryOptionCombo string `json:"categoryOptionCombo"`
		Value               string `json:"value"`
	}
	out := struct {
		DataValues []jv `json:"dataValues"`
	}{}
	for _, v := range values {
		out.DataValues = append(out.DataValues, jv{v.de, v.pe, v.ou, v.coc, v.value})
	}
	b, _ := json.Marshal(out)
	return b
}

// goodValues are 8 values the sample target takes; unknownFacility 4 for KL_N_F3, an org unit
// the target does not know until a test adds it.
func goodValues(pe string, base int) []dv {
	var out []dv
	for i, ou := range []string{"KL_N_F1", "KL_N_F2"} {
		for j, coc := range []string{"F_LT1", "F_1TO4", "M_LT1", "M_1TO4"} {
			out = append(out, dv{"EPI_BCG", pe, ou, coc, fmt.Sprint(base + 10*i + j + 1)})
		}
	}
	return out
}

func unknownFacility(pe string) []dv {
	var out []dv
	for j, coc := range []string{"F_LT1", "F_1TO4", "M_LT1", "M_1TO4"} {
		out = append(out, dv{"EPI_BCG", pe, "KL_N_F3", coc, fmt.Sprint(100 + j)})
	}
	return out
}

// ingest posts a payload to source cht and returns its transaction id.
func (tl *tally) ingest(body []byte) string {
	tl.t.Helper()
	req, _ := http.NewRequest("POST", tl.base+"/ingest/cht", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+chtToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		tl.t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(res.Body).Decode(&out)
	id, _ := out["transaction"].(string)
	if res.StatusCode != http.StatusAccepted || id == "" {
		tl.t.Fatalf("ingest: HTTP %d %v", res.StatusCode, out)
	}
	return id
}

// partial posts 8 values of 202401 the target takes and 4 it rejects (KL_N_F3), and waits
// until the transaction is partly delivered: one dead letter of 4 values.
func (tl *tally) partial() string {
	tl.t.Helper()
	id := tl.ingest(dvsJSON(append(goodValues("202401", 0), unknownFacility("202401")...)))
	tl.waitStatus(id, txlog.TxPartiallyDelivered)
	return id
}

// waitStatus polls the admin API until the transaction has the status.
func (tl *tally) waitStatus(id, status string) {
	tl.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		req, _ := http.NewRequest("GET", tl.base+"/admin/v1/transactions/"+id, nil)
		req.Header.Set("Authorization", "Bearer "+operatorToken)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			tl.t.Fatal(err)
		}
		var v map[string]any
		_ = json.NewDecoder(res.Body).Decode(&v)
		res.Body.Close()
		if v["status"] == status {
			return
		}
		if time.Now().After(deadline) {
			tl.t.Fatalf("transaction %s is %v, want %s", id, v["status"], status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// browser is an HTTP client with a cookie jar that does not follow redirects, so that a
// test sees them.
type browser struct {
	t    testing.TB
	base string
	c    *http.Client
}

func (tl *tally) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: tl.t, base: tl.base, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

// page is an answer: status, Location and body.
type page struct {
	status   int
	location string
	body     string
	header   http.Header
}

func (b *browser) do(method, path string, form url.Values) page {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, b.base+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	res, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	return page{status: res.StatusCode, location: res.Header.Get("Location"), body: string(data), header: res.Header}
}

func (b *browser) get(path string) page { return b.do("GET", path, nil) }

// mustGet fetches a page that must answer 200.
func (b *browser) mustGet(path string) page {
	b.t.Helper()
	p := b.get(path)
	if p.status != http.StatusOK {
		b.t.Fatalf("GET %s: HTTP %d %s", path, p.status, p.body)
	}
	return p
}

func (b *browser) login(token string) {
	b.t.Helper()
	p := b.do("POST", "/console/login", url.Values{"token": {token}, "next": {"/console/"}})
	if p.status != http.StatusSeeOther || p.location != "/console/" {
		b.t.Fatalf("login: HTTP %d to %q: %s", p.status, p.location, p.body)
	}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf is the session's CSRF token, read from a page's forms.
func (b *browser) csrf() string {
	b.t.Helper()
	m := csrfField.FindStringSubmatch(b.mustGet("/console/").body)
	if m == nil {
		b.t.Fatal("no CSRF token on the overview")
	}
	return m[1]
}

// exchangeYAML starts a second emulator, the sample's tracker instance, and returns an
// exchange "epi" pulling its BCG program indicators for fixed 2024 periods into hmis (the
// sample's tracker-to-aggregate exchange, as mediator's exchange tests configure it).
func exchangeYAML(t testing.TB) string {
	t.Helper()
	tracker := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
	t.Cleanup(tracker.Close)
	return fmt.Sprintf(`exchanges:
  - name: epi
    description: BCG doses from the tracker
    source: {url: %s, username: admin, password: district, timeout: 5s, retry: {initial_delay: 10ms, max_delay: 40ms}}
    requests:
      - name: Immunisation
        dx: [PI_BCG_F_LT1, PI_BCG_M_LT1]
        pe: ["202404", "202405", "202406"]
        ou: [KL, LEVEL-3]
        input_id_scheme: CODE
        output_id_scheme: ATTRIBUTE:%s
    id_schemes: {data_element: CODE, org_unit: UID, category_option_combo: UID}
    targets: [hmis]
    await: 10s
`, tracker.URL, dhis2test.SampleAttributeAggDECode)
}

// audit reads the admin actions of who from the audit log through the admin API, newest first.
func (tl *tally) audit(who string) []txlog.AuditEntry {
	tl.t.Helper()
	req, _ := http.NewRequest("GET", tl.base+"/admin/v1/audit?who="+url.QueryEscape(who), nil)
	req.Header.Set("Authorization", "Bearer "+operatorToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tl.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Entries []txlog.AuditEntry `json:"audit"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK {
		tl.t.Fatalf("audit: HTTP %d %v", resp.StatusCode, err)
	}
	return out.Entries
}
