package console_test

import (
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/tally-hmis/tally/adapters/dhis2/dhis2test"
	"github.com/tally-hmis/tally/mediator/txlog"
)

// fixFacility adds KL_N_F3 to the emulator's metadata and to the EPI data set, as an
// implementer would in DHIS2 (the same fix as mediator's TestPartialRejection).
func fixFacility(t testing.TB, emu *dhis2test.Server) {
	t.Helper()
	if err := emu.UpdateMetadata(func(m *dhis2test.Metadata) error {
		m.AddOrgUnit(dhis2test.OrgUnit{ID: "Kx3Fac00003", Code: "KL_N_F3", Name: "North Facility 3", Parent: "KL_NORTH", OpeningDate: "2000-01-01"})
		ds := m.DataSet("EPI_MONTHLY")
		ds.OrgUnits = append(ds.OrgUnits, "KL_N_F3")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

var seqLink = regexp.MustCompile(`href="/console/dlq/(\d+)"`)

func TestDeadLettersFilterPreviewReplayAndHistory(t *testing.T) {
	tl := startTally(t, "")
	id := tl.partial()
	b := tl.browser()
	b.login(operatorToken)

	if p := b.mustGet("/console/dlq?reason=locked"); !strings.Contains(p.body, "0 dead letters match") {
		t.Error("reason=locked lists the rejected letter")
	}
	list := b.mustGet("/console/dlq?target=hmis&reason=rejected")
	if !strings.Contains(list.body, "1 dead letters match, holding 4 values") {
		t.Fatalf("list does not count the letter: %s", list.body)
	}
	m := seqLink.FindStringSubmatch(list.body)
	if m == nil {
		t.Fatal("no letter linked")
	}
	seq := m[1]
	csrf := b.csrf()

	// The preview shows exactly what would be sent, codes with names, and sends nothing.
	prev := b.do("POST", "/console/dlq/preview", url.Values{"csrf": {csrf}, "seq": {seq}})
	if prev.status != http.StatusOK {
		t.Fatalf("preview: HTTP %d %s", prev.status, prev.body)
	}
	for _, want := range []string{"KL_N_F3", "EPI_BCG", "BCG doses given", "4 values", "Replay 1 dead letters"} {
		if !strings.Contains(prev.body, want) {
			t.Errorf("preview lacks %q", want)
		}
	}
	if strings.Contains(prev.body, "KL_N_F1") {
		t.Error("preview shows a value the target accepted")
	}
	if p := b.mustGet("/console/dlq/" + seq); !strings.Contains(p.body, "KL_N_F3") {
		t.Error("the letter is gone after a preview")
	}

	// Discard asks with the number of values, and refuses another number.
	conf := b.do("POST", "/console/dlq/discard/confirm", url.Values{"csrf": {csrf}, "all": {"true"}, "target": {"hmis"}})
	if conf.status != http.StatusOK || !strings.Contains(conf.body, "holding <strong>4 values</strong>") {
		t.Fatalf("discard confirmation: HTTP %d %s", conf.status, conf.body)
	}
	if p := b.do("POST", "/console/dlq/discard", url.Values{"csrf": {csrf}, "all": {"true"}, "target": {"hmis"}, "confirm": {"3"}}); p.status != http.StatusConflict {
		t.Errorf("discard confirming 3 values of 4: HTTP %d", p.status)
	}
	if p := b.do("POST", "/console/dlq/discard", url.Values{"csrf": {csrf}, "all": {"true"}, "target": {"hmis"}}); p.status != http.StatusConflict {
		t.Errorf("discard without a confirmation: HTTP %d", p.status)
	}

	fixFacility(t, tl.emu)
	res := b.do("POST", "/console/dlq/replay", url.Values{"csrf": {csrf}, "seq": {seq}})
	if res.status != http.StatusOK || !strings.Contains(res.body, "1 of 1 dead letters replayed (4 values)") {
		t.Fatalf("replay: HTTP %d %s", res.status, res.body)
	}
	tl.waitStatus(id, txlog.TxDelivered)
	if v, ok := tl.emu.Lookup("EPI_BCG", "202401", "KL_N_F3", "F_LT1", ""); !ok || v.Value != "100" {
		t.Errorf("the replayed value is not in the target: %v %v", v, ok)
	}
	tx := b.mustGet("/console/transactions/" + id)
	if !strings.Contains(tx.body, "replayed dead letter "+seq) || !strings.Contains(tx.body, "by <strong>admin</strong>") {
		t.Errorf("the transaction does not say who replayed: %s", tx.body)
	}
	if p := b.get("/console/dlq/" + seq); p.status != http.StatusNotFound {
		t.Errorf("replayed letter: HTTP %d", p.status)
	}
	if p := b.do("POST", "/console/dlq/replay", url.Values{"seq": {seq}}); p.status != http.StatusForbidden {
		t.Errorf("replay without the CSRF token: HTTP %d", p.status)
	}
}

func TestDeadLetterDiscardAfterConfirmation(t *testing.T) {
	tl := startTally(t, "")
	id := tl.partial()
	b := tl.browser()
	b.login(operatorToken)
	csrf := b.csrf()
	form := url.Values{"csrf": {csrf}, "all": {"true"}, "target": {"hmis"}, "confirm": {"4"}}
	p := b.do("POST", "/console/dlq/discard", form)
	if p.status != http.StatusOK || !strings.Contains(p.body, "1 of 1 dead letters discarded (4 values)") {
		t.Fatalf("discard: HTTP %d %s", p.status, p.body)
	}
	if p := b.mustGet("/console/dlq"); !strings.Contains(p.body, "0 dead letters match") {
		t.Error("a discarded letter is still listed")
	}
	if p := b.mustGet("/console/transactions/" + id); !strings.Contains(p.body, "discarded dead letter") || !strings.Contains(p.body, "by <strong>admin</strong>") {
		t.Error("the transaction does not record the discard and who did it")
	}
	// The console's action is in the audit log as the admin API's are.
	entries := tl.audit("admin")
	if len(entries) == 0 || entries[0].Action != "POST /console/dlq/discard" || entries[0].Result != http.StatusOK || entries[0].Scope != "operate" {
		t.Errorf("audit log = %+v, want the console discard by admin", entries)
	}
}

// TestReadSessionIsRefusedEveryChange walks every console route that changes something and
// checks that a read session, with a valid CSRF token, is refused (403) while an operator
// session is let through the guard.
func TestReadSessionIsRefusedEveryChange(t *testing.T) {
	tl := startTally(t, "")
	e, ok := tl.svc.Handler().(*echo.Echo)
	if !ok {
		t.Fatalf("the service's handler is %T", tl.svc.Handler())
	}
	viewer, operator := tl.browser(), tl.browser()
	viewer.login(viewerToken)
	operator.login(operatorToken)
	vcsrf, ocsrf := viewer.csrf(), operator.csrf()
	readOnly := map[string]bool{"/console/logout": true, "/console/dlq/preview": true, "/console/preview": true, "/console/login": true}
	checked := 0
	for _, r := range e.Routes() {
		if !strings.HasPrefix(r.Path, "/console/") || strings.HasPrefix(r.Method, "echo_") || r.Method == http.MethodGet || r.Method == http.MethodHead || readOnly[r.Path] {
			continue
		}
		path := strings.NewReplacer(":name", "nosuch", ":seq", "1", ":id", "x").Replace(r.Path)
		if p := viewer.do(r.Method, path, url.Values{"csrf": {vcsrf}}); p.status != http.StatusForbidden || !strings.Contains(p.body, "needs scope operate") {
			t.Errorf("read session %s %s: HTTP %d, want 403", r.Method, r.Path, p.status)
		}
		if p := operator.do(r.Method, path, url.Values{"csrf": {ocsrf}}); p.status == http.StatusForbidden || p.status == http.StatusUnauthorized {
			t.Errorf("operator session %s %s: HTTP %d", r.Method, r.Path, p.status)
		}
		checked++
	}
	// The refusals are audited under the read user's name.
	if n := len(tl.audit("viewer")); n != checked {
		t.Errorf("%d audit entries for viewer, want one per refused route (%d)", n, checked)
	}
	t.Logf("%d state-changing console routes checked", checked)
	if checked == 0 {
		t.Error("no state-changing console route found")
	}
	// A read session sees the pages.
	if p := viewer.mustGet("/console/"); !strings.Contains(p.body, "viewer") {
		t.Error("overview does not name the read user")
	}
}

var nextLink = regexp.MustCompile(`<a rel="next" href="([^"]+)"`)

func TestDeadLetterListPages(t *testing.T) {
	tl := startTally(t, "")
	var last string
	for i := range 52 { // each payload leaves one dead letter of one value
		last = tl.ingest(dvsJSON([]dv{{"EPI_BCG", "202401", "KL_N_F3", "F_LT1", fmt.Sprint(i + 1)}}))
	}
	tl.waitStatus(last, txlog.TxFailed)
	b := tl.browser()
	b.login(viewerToken)
	var first page
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		first = b.mustGet("/console/dlq?target=hmis")
		if strings.Contains(first.body, "52 dead letters match, holding 52 values") || time.Now().After(deadline) {
			break
		}
	}
	if n := len(seqLink.FindAllString(first.body, -1)); n != 50 {
		t.Fatalf("page 1 lists %d letters, want 50", n)
	}
	m := nextLink.FindStringSubmatch(first.body)
	if m == nil {
		t.Fatal("no link to the next page")
	}
	next := html.UnescapeString(m[1])
	if !strings.Contains(next, "target=hmis") || !strings.Contains(next, "after=") {
		t.Errorf("next page link %q loses the filter or the position", next)
	}
	second := b.mustGet("/console/dlq" + next)
	if n := len(seqLink.FindAllString(second.body, -1)); n != 2 {
		t.Errorf("page 2 lists %d letters, want 2", n)
	}
}
