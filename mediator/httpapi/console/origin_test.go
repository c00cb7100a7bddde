package console_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/tally-hmis/tally/mediator/txlog"
)

func TestWhereDidThisValueComeFrom(t *testing.T) {
	tl := startTally(t, "")
	// Two transactions write EPI_BCG for KL_N_F1 in 202401; the second also carries a value
	// the target rejects (KL_N_F3), which stays in a dead letter.
	first := tl.ingest(dvsJSON(goodValues("202401", 0)))
	tl.waitStatus(first, txlog.TxDelivered)
	second := tl.ingest(dvsJSON(append(goodValues("202401", 500), unknownFacility("202401")...)))
	tl.waitStatus(second, txlog.TxPartiallyDelivered)
	other := tl.ingest(dvsJSON(goodValues("202402", 900)))
	tl.waitStatus(other, txlog.TxDelivered)

	b := tl.browser()
	b.login(viewerToken)
	// By name and code: the data element by its name, the org unit by its code.
	p := b.mustGet("/console/origin?" + url.Values{"target": {"hmis"}, "de": {"BCG doses given"}, "pe": {"202401"}, "ou": {"KL_N_F1"}}.Encode())
	if !strings.Contains(p.body, "2 deliveries carried such values") {
		t.Fatalf("origin page: %s", p.body)
	}
	i1, i2 := strings.Index(p.body, first), strings.Index(p.body, second)
	if i1 < 0 || i2 < 0 || i2 > i1 {
		t.Errorf("want both transactions, newest first: first at %d, second at %d", i1, i2)
	}
	if strings.Contains(p.body, other) {
		t.Error("a transaction of another period is listed")
	}
	for _, want := range []string{">501<", ">1<", "North Facility 1", "BCG doses given"} {
		if !strings.Contains(p.body, want) {
			t.Errorf("origin page lacks %q (what each wrote, with names)", want)
		}
	}
	if strings.Contains(p.body, "KL_N_F2") {
		t.Error("values of another org unit are listed")
	}
	// The rejected value leads to its dead letter.
	rej := b.mustGet("/console/origin?" + url.Values{"target": {"hmis"}, "de": {"EPI_BCG"}, "pe": {"202401"}, "ou": {"KL_N_F3"}}.Encode())
	if !strings.Contains(rej.body, "1 deliveries carried such values") || !strings.Contains(rej.body, ">rejected</a>") ||
		!strings.Contains(rej.body, "tx="+second) {
		t.Errorf("the rejected value is not shown as a dead letter: %s", rej.body)
	}
	if p := b.mustGet("/console/origin?target=hmis&de=EPI_BCG&pe=203001&ou=KL_N_F1"); !strings.Contains(p.body, "No delivery") {
		t.Error("a period nothing was sent for lists deliveries")
	}

	// The transaction list searches the content through the same index.
	list := b.mustGet("/console/transactions?ou=KL_N_F3")
	if n := strings.Count(list.body, `href="/console/transactions/`); n != 1 || !strings.Contains(list.body, second) {
		t.Errorf("content search by org unit code lists %d transactions, want %s", n, second)
	}
	list = b.mustGet("/console/transactions?" + url.Values{"ou": {"north facility 2"}, "pe": {"202401"}}.Encode())
	if n := strings.Count(list.body, `href="/console/transactions/`); n != 2 || strings.Contains(list.body, other) {
		t.Errorf("content search by org unit name and period lists %d transactions, want the 2 of 202401", n)
	}
	list = b.mustGet("/console/transactions?de=EPI_BCG&pe=202402")
	if n := strings.Count(list.body, `href="/console/transactions/`); n != 1 || !strings.Contains(list.body, other) {
		t.Errorf("content search by data element and period lists %d transactions, want %s", n, other)
	}
	if p := b.get("/console/transactions?de=NOSUCH"); p.status != http.StatusOK || strings.Contains(p.body, `href="/console/transactions/`) {
		t.Errorf("content search for an unknown data element: HTTP %d, lists transactions", p.status)
	}
}

func TestTransactionValuesPaged(t *testing.T) {
	tl := startTally(t, "")
	// 14 months, 8 values each, and 4 values the target rejects: 116 values in one batch.
	var values []dv
	for _, pe := range []string{"202211", "202212", "202301", "202302", "202303", "202304", "202305", "202306", "202307",
		"202308", "202309", "202310", "202311", "202312"} {
		values = append(values, goodValues(pe, 0)...)
	}
	values = append(values, unknownFacility("202312")...)
	id := tl.ingest(dvsJSON(values))
	tl.waitStatus(id, txlog.TxPartiallyDelivered)
	b := tl.browser()
	b.login(viewerToken)
	if p := b.mustGet("/console/transactions/" + id); !strings.Contains(p.body, "/console/transactions/"+id+"/values") {
		t.Error("the transaction page does not lead to its values")
	}
	rows := func(body string) int { return strings.Count(body, "<tr>") - 1 } // less the header
	first := b.mustGet("/console/transactions/" + id + "/values")
	if !strings.Contains(first.body, "116 values sent to the targets") || !strings.Contains(first.body, "page 1 of 2") || rows(first.body) != 100 {
		t.Errorf("values page 1: %d rows\n%s", rows(first.body), first.body)
	}
	second := b.mustGet("/console/transactions/" + id + "/values?page=2")
	if rows(second.body) != 16 || strings.Contains(second.body, `rel="next"`) {
		t.Errorf("values page 2: %d rows, want 16", rows(second.body))
	}
	all := first.body + second.body
	if n := strings.Count(all, ">rejected</a>"); n != 4 {
		t.Errorf("%d values shown rejected, want 4", n)
	}
	if !strings.Contains(all, "North Facility 1") || !strings.Contains(all, "BCG doses given") {
		t.Error("values without names")
	}
}
