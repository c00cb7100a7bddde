package console_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tally-hmis/tally/adapters/dhis2/dhis2test"
	"github.com/tally-hmis/tally/mediator/txlog"
)

func TestLoginSessionCookieAndCSRF(t *testing.T) {
	tl := startTally(t, "")
	b := tl.browser()
	if p := b.get("/"); p.status != http.StatusSeeOther || p.location != "/console/" {
		t.Errorf("GET / = %d to %q, want the console", p.status, p.location)
	}
	if p := b.get("/console/transactions?source=cht"); p.status != http.StatusSeeOther || !strings.HasPrefix(p.location, "/console/login?next=") {
		t.Fatalf("without a session: HTTP %d to %q, want the login page", p.status, p.location)
	}
	if p := b.do("POST", "/console/login", url.Values{"token": {"not-a-token"}}); p.status != http.StatusUnauthorized || !strings.Contains(p.body, "matches no admin credential") {
		t.Errorf("wrong token: HTTP %d", p.status)
	}
	p := b.do("POST", "/console/login", url.Values{"token": {operatorToken}, "next": {"/console/transactions?source=cht"}})
	if p.status != http.StatusSeeOther || p.location != "/console/transactions?source=cht" {
		t.Fatalf("login: HTTP %d to %q", p.status, p.location)
	}
	ck := p.header.Get("Set-Cookie")
	for _, want := range []string{"tally_console=", "HttpOnly", "SameSite=Strict", "Path=/console"} {
		if !strings.Contains(ck, want) {
			t.Errorf("session cookie %q lacks %s", ck, want)
		}
	}
	if strings.Contains(ck, operatorToken) {
		t.Error("the cookie carries the token")
	}
	if p := b.do("POST", "/console/login", url.Values{"token": {operatorToken}, "next": {"//evil.example/"}}); p.location != "/console/" {
		t.Errorf("login redirects to %q, want the console only", p.location)
	}
	over := b.mustGet("/console/")
	for _, want := range []string{"hmis", `id="target-hmis"`, "cht", "admin", "operate"} {
		if !strings.Contains(over.body, want) {
			t.Errorf("overview lacks %q", want)
		}
	}
	if csp := over.header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
		t.Errorf("CSP = %q", csp)
	}
	// A request that changes something without the session's CSRF token is refused.
	if p := b.do("POST", "/console/logout", url.Values{}); p.status != http.StatusForbidden || !strings.Contains(p.body, "CSRF") {
		t.Errorf("logout without CSRF: HTTP %d", p.status)
	}
	if p := b.do("POST", "/console/logout", url.Values{"csrf": {"forged"}}); p.status != http.StatusForbidden {
		t.Errorf("logout with a forged CSRF token: HTTP %d", p.status)
	}
	if p := b.do("POST", "/console/logout", url.Values{"csrf": {b.csrf()}}); p.status != http.StatusSeeOther {
		t.Errorf("logout: HTTP %d", p.status)
	}
	if p := b.get("/console/"); p.status != http.StatusSeeOther {
		t.Errorf("after logout: HTTP %d, want the login page", p.status)
	}
}

func TestTransactionListPagesAndFilters(t *testing.T) {
	tl := startTally(t, "")
	var ids []string
	for i := range 52 {
		ids = append(ids, tl.ingest(dvsJSON(goodValues("202401", i*100))))
	}
	bad := tl.ingest(dvsJSON(append(goodValues("202402", 0), unknownFacility("202402")...)))
	tl.waitStatus(bad, txlog.TxPartiallyDelivered)
	tl.waitStatus(ids[len(ids)-1], txlog.TxDelivered)
	b := tl.browser()
	b.login(viewerToken)

	first := b.mustGet("/console/transactions")
	if n := strings.Count(first.body, `href="/console/transactions/`); n != 50 {
		t.Errorf("page 1 lists %d transactions, want 50", n)
	}
	if !strings.Contains(first.body, bad) || !strings.Contains(first.body, `rel="next"`) {
		t.Error("page 1 lacks the newest transaction or the link to the next page")
	}
	second := b.mustGet("/console/transactions?page=2")
	if n := strings.Count(second.body, `href="/console/transactions/`); n != 3 {
		t.Errorf("page 2 lists %d transactions, want 3", n)
	}
	if !strings.Contains(second.body, ids[0]) || strings.Contains(second.body, `rel="next"`) {
		t.Error("page 2 lacks the oldest transaction, or offers a next page")
	}
	partial := b.mustGet("/console/transactions?status=" + url.QueryEscape(txlog.TxPartiallyDelivered))
	if n := strings.Count(partial.body, `href="/console/transactions/`); n != 1 || !strings.Contains(partial.body, bad) {
		t.Errorf("status filter lists %d transactions, want only %s", n, bad)
	}
	if p := b.mustGet("/console/transactions?target=nosuch"); strings.Contains(p.body, `href="/console/transactions/`) {
		t.Error("a target no transaction went to lists some")
	}
	if p := b.mustGet("/console/transactions?until=2000-01-01"); strings.Contains(p.body, `href="/console/transactions/`) {
		t.Error("until 2000 lists transactions")
	}
	if p := b.get("/console/transactions?since=yesterday"); p.status != http.StatusBadRequest || !strings.Contains(p.body, "since") {
		t.Errorf("a bad since: HTTP %d", p.status)
	}

	// The transaction page starts with the summary: per target outcome and conflicts by code.
	show := b.mustGet("/console/transactions/" + bad)
	for _, want := range []string{txlog.TxPartiallyDelivered, "Conflicts by error code", "E76", "tx=" + bad} {
		if !strings.Contains(show.body, want) {
			t.Errorf("transaction page lacks %q", want)
		}
	}
	if p := b.get("/console/transactions/nosuchtx"); p.status != http.StatusNotFound {
		t.Errorf("unknown transaction: HTTP %d", p.status)
	}
}

// The overview counts the values waiting for a target, read from TALLY_DELIVER's messages
// without taking them: while the target answers 503 the two payloads' 16 values wait; once
// it recovers they are delivered and nothing waits.
func TestOverviewCountsValuesWaiting(t *testing.T) {
	tl := startTally(t, "")
	fault := tl.emu.Faults().Add(dhis2test.Fault{Kind: dhis2test.FaultStatus, Path: "/api/dataValueSets", Status: http.StatusServiceUnavailable})
	first := tl.ingest(dvsJSON(goodValues("202401", 0)))
	tl.ingest(dvsJSON(goodValues("202402", 0)))
	b := tl.browser()
	b.login(operatorToken)
	row := regexp.MustCompile(`(?s)<tr id="target-hmis">.*?</tr>`)
	waiting := func() string {
		m := row.FindString(b.mustGet("/console/").body)
		if m == "" {
			t.Fatal("the overview has no row for hmis")
		}
		return m
	}
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(waiting(), ">16<br><small>in 2 batches</small>") {
		if time.Now().After(deadline) {
			t.Fatalf("the hmis row never showed 16 values in 2 batches waiting:\n%s", waiting())
		}
		time.Sleep(50 * time.Millisecond)
	}
	tl.emu.Faults().Remove(fault)
	tl.waitStatus(first, txlog.TxDelivered)
	deadline = time.Now().Add(15 * time.Second)
	for !strings.Contains(waiting(), `<td class="num">0</td>`) {
		if time.Now().After(deadline) {
			t.Fatalf("values still waiting after the target recovered:\n%s", waiting())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
