package console_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tally-hmis/tally/mediator/txlog"
)

var diffCounts = regexp.MustCompile(`(\d+) added</span>, <span class="st-changed">(\d+) changed</span>, (\d+) unchanged`)

func TestExchangeDryRunDiffTable(t *testing.T) {
	tl := startTally(t, exchangeYAML(t))
	b := tl.browser()
	b.login(operatorToken)
	if p := b.mustGet("/console/exchanges"); !strings.Contains(p.body, "/console/exchanges/epi") {
		t.Fatal("the exchange is not listed")
	}
	csrf := b.csrf()
	dry := b.do("POST", "/console/exchanges/epi/run", url.Values{"csrf": {csrf}, "dry": {"true"}})
	if dry.status != http.StatusOK {
		t.Fatalf("dry run: HTTP %d %s", dry.status, dry.body)
	}
	m := diffCounts.FindStringSubmatch(dry.body)
	if m == nil || m[1] == "0" || m[3] != "0" {
		t.Fatalf("first dry run: counts %v, want values added and none unchanged\n%s", m, dry.body)
	}
	if !strings.Contains(dry.body, `class="row-added"`) || !strings.Contains(dry.body, "BCG doses given") {
		t.Error("the diff table lacks added rows with names")
	}
	if n := tl.emu.Store().Len(); n != 0 {
		t.Errorf("a dry run stored %d values in the target", n)
	}

	run := b.do("POST", "/console/exchanges/epi/run", url.Values{"csrf": {csrf}, "dry": {"false"}})
	if run.status != http.StatusSeeOther || !strings.Contains(run.location, "started=") {
		t.Fatalf("run now: HTTP %d to %q %s", run.status, run.location, run.body)
	}
	tx := run.location[strings.Index(run.location, "started=")+len("started="):]
	tl.waitStatus(tx, txlog.TxDelivered)

	// The run finishes its bookkeeping after its values are delivered: until then a new run
	// is refused as busy (409).
	var again page
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		again = b.do("POST", "/console/exchanges/epi/run", url.Values{"csrf": {csrf}, "dry": {"true"}})
		if again.status != http.StatusConflict || time.Now().After(deadline) {
			break
		}
	}
	m2 := diffCounts.FindStringSubmatch(again.body)
	if m2 == nil || m2[1] != "0" || m2[3] != m[1] {
		t.Errorf("dry run after the run: HTTP %d counts %v, want the %s values unchanged\n%s", again.status, m2, m[1], again.body)
	}
	if p := b.mustGet("/console/exchanges/epi"); !strings.Contains(p.body, tx) {
		t.Error("the exchange page does not list the run")
	}
}
