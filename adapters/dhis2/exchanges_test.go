package dhis2

import (
	"context"
	"encoding/json"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/tally-hmis/tally/transform"
)

// Exchanges as GET /api/aggregateDataExchanges?fields=* writes them: §10.8's external
// exchange with a PAT (the token is never returned, §10.1) and the docs' internal one,
// and a 2.41 exchange using the newer fields.
const (
	adeExternal = `{"id":"pG4bBTMiCqO","name":"External data exchange with PAT authentication","created":"2024-01-01T00:00:00.000",
 "sharing":{"public":"rw------"},
 "source":{"requests":[{"name":"ANC","dx":["fbfJHSPpUQD","cYeuwXTCPkU","Jtf34kNZhzP"],
   "pe":["LAST_12_MONTHS","202201"],"ou":["ImspTQPwCqd"],"filters":[],"inputIdScheme":"UID","outputIdScheme":"CODE"}]},
 "target":{"type":"EXTERNAL","api":{"url":"https://play.dhis2.org/2.38.2.1"},"request":{"idScheme":"CODE"}}}`
	adeInternal = `{"id":"iNtErNaL001","name":"Internal data exchange",
 "source":{"params":{"periodTypes":["MONTHLY","QUARTERLY"]},
  "requests":[{"name":"ANC","visualization":null,"dx":["fbfJHSPpUQD","cYeuwXTCPkU","Jtf34kNZhzP"],"pe":["LAST_12_MONTHS","202201"],
   "ou":["ImspTQPwCqd"],"filters":[{"dimension":"Bpx0589u8y0","items":["oRVt7g429ZO","MAs88nJc9nL"]}],
   "inputIdScheme":"UID","outputDataElementIdScheme":"UID","outputOrgUnitIdScheme":"UID","outputIdScheme":"UID"}]},
 "target":{"type":"INTERNAL","request":{"dataElementIdScheme":"UID","orgUnitIdScheme":"UID","categoryOptionComboIdScheme":"UID","idScheme":"UID"}}}`
	ade241 = `{"id":"KlEpiPis001","code":"KL_EPI_PIS","name":"Kalima EPI program indicators",
 "source":{"requests":[{"name":"EPI","dx":["PI_BCG_F_LT1","PI_MAL_TREATED"],"pe":["LAST_3_MONTHS"],"ou":["KL","LEVEL-3"],
   "aggregationType":"SUM","inputIdScheme":"CODE","outputDataItemIdScheme":"ATTRIBUTE:AggDeCode01","outputOrgUnitIdScheme":"CODE",
   "outputIdScheme":"CODE"}]},
 "target":{"type":"EXTERNAL","api":{"url":"http://tally:8080","username":"ade"},
  "request":{"idScheme":"CODE","importStrategy":"CREATE_AND_UPDATE","skipAudit":false,"dryRun":true}}}`
)

func TestAggregateDataExchanges(t *testing.T) {
	f := newFake(t)
	f.handle("GET /api/aggregateDataExchanges", reply(200, jsonCT,
		`{"pager":{"page":1,"pageCount":1,"total":3,"pageSize":50},"aggregateDataExchanges":[`+adeExternal+","+adeInternal+","+ade241+`]}`))
	c := newTestClient(t, f.url())
	ades, err := c.AggregateDataExchanges(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if q := f.requests()[0].Query; q.Get("fields") != "*" || q.Get("paging") != "false" {
		t.Errorf("query = %v", q)
	}
	if len(ades) != 3 {
		t.Fatalf("%d exchanges", len(ades))
	}
	ext, in, kl := ades[0], ades[1], ades[2]
	if ext.ID != "pG4bBTMiCqO" || ext.Target.Type != TargetExternal || ext.Target.API == nil || ext.Target.API.URL != "https://play.dhis2.org/2.38.2.1" {
		t.Errorf("external = %+v", ext)
	}
	if in.Target.Type != TargetInternal || in.Target.API != nil || in.Source.Params == nil ||
		!reflect.DeepEqual(in.Source.Params.PeriodTypes, []string{"MONTHLY", "QUARTERLY"}) {
		t.Errorf("internal = %+v", in)
	}
	wantFilter := []Filter{{Dimension: "Bpx0589u8y0", Items: []string{"oRVt7g429ZO", "MAs88nJc9nL"}}}
	if r := in.Source.Requests[0]; !reflect.DeepEqual(r.Filters, wantFilter) || r.OutputDataElementIDScheme != "UID" {
		t.Errorf("internal request = %+v", r)
	}

	// A source request runs as it is: the query is the one DHIS2's exchange makes.
	q, err := kl.Source.Requests[0].query()
	if err != nil {
		t.Fatal(err)
	}
	want := url.Values{
		"dimension": {"dx:PI_BCG_F_LT1;PI_MAL_TREATED", "pe:LAST_3_MONTHS", "ou:KL;LEVEL-3"}, "aggregationType": {"SUM"},
		"inputIdScheme": {"CODE"}, "outputDataItemIdScheme": {"ATTRIBUTE:AggDeCode01"}, "outputOrgUnitIdScheme": {"CODE"}, "outputIdScheme": {"CODE"},
	}
	if !reflect.DeepEqual(q, want) {
		t.Errorf("query =\n %v\nwant\n %v", q, want)
	}

	// The target request gives the import options of the push.
	opts := []ImportOptions{ext.Target.Request.ImportOptions(), in.Target.Request.ImportOptions(), kl.Target.Request.ImportOptions()}
	wantOpts := []ImportOptions{
		{Schemes: transform.IDSchemes{IDScheme: "CODE"}, SkipAudit: true},
		{Schemes: transform.IDSchemes{IDScheme: "UID", DataElement: "UID", OrgUnit: "UID", CategoryOptionCombo: "UID"}, SkipAudit: true},
		{Schemes: transform.IDSchemes{IDScheme: "CODE"}, ImportStrategy: "CREATE_AND_UPDATE", DryRun: true},
	}
	if !reflect.DeepEqual(opts, wantOpts) {
		t.Errorf("import options =\n %+v\nwant\n %+v", opts, wantOpts)
	}
	for _, o := range opts {
		if _, err := o.query(); err != nil {
			t.Errorf("%+v: %v", o, err)
		}
	}

	// Written back out, an exchange keeps DHIS2's field names and holds no secrets.
	b, _ := json.Marshal(kl)
	for _, s := range []string{`"outputDataItemIdScheme":"ATTRIBUTE:AggDeCode01"`, `"dx":["PI_BCG_F_LT1","PI_MAL_TREATED"]`, `"skipAudit":false`} {
		if !strings.Contains(string(b), s) {
			t.Errorf("%s lacks %s", b, s)
		}
	}
	if strings.Contains(string(b), "accessToken") || strings.Contains(string(b), "password") {
		t.Errorf("%s", b)
	}
}

func TestAggregateDataExchange(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		kind   Kind
		msg    string
	}{
		{name: "found", status: 200, body: ade241},
		{name: "not found", status: 404, body: `{"httpStatus":"Not Found","httpStatusCode":404,"status":"ERROR"}`, kind: KindPermanent, msg: "no aggregate data exchange KlEpiPis001"},
		{name: "not found with message", status: 404, body: `{"httpStatus":"Not Found","httpStatusCode":404,"status":"ERROR","message":"AggregateDataExchange with id KlEpiPis001 could not be found."}`,
			kind: KindPermanent, msg: "could not be found"},
		{name: "not an exchange", status: 200, body: `{"system":{"version":"2.40"}}`, kind: KindPermanent, msg: "not an aggregate data exchange"},
		{name: "401", status: 401, body: body401JSON, kind: KindPermanent, msg: "Unauthorized"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.handle("GET /api/aggregateDataExchanges/KlEpiPis001", reply(tt.status, jsonCT, tt.body))
			c := newTestClient(t, f.url())
			ade, err := c.AggregateDataExchange(context.Background(), "KlEpiPis001")
			if q := f.requests()[0].Query; q.Get("fields") != "*" {
				t.Errorf("query = %v", q)
			}
			if tt.kind != 0 {
				e := wantKind(t, err, tt.kind)
				if !strings.Contains(e.Error(), tt.msg) {
					t.Errorf("err = %q, want it to mention %q", e, tt.msg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ade.Code != "KL_EPI_PIS" || len(ade.Source.Requests) != 1 || ade.Target.API.Username != "ade" {
				t.Errorf("exchange = %+v", ade)
			}
		})
	}
	c := newTestClient(t, "http://127.0.0.1:1/hmis")
	for _, uid := range []string{"", "a/b"} {
		if _, err := c.AggregateDataExchange(context.Background(), uid); KindOf(err) != KindPermanent {
			t.Errorf("uid %q: err = %v", uid, err)
		}
	}
}

func TestAggregateDataExchangesMissingEndpoint(t *testing.T) {
	f := newFake(t)
	// 2.38 has no exchanges: the request falls to a 404 page.
	f.handle("GET /api/aggregateDataExchanges", reply(404, "text/html", "<html><head><title>HTTP Status 404 – Not Found</title></head></html>"))
	c := newTestClient(t, f.url())
	_, err := c.AggregateDataExchanges(context.Background())
	e := wantKind(t, err, KindPermanent)
	if e.HTTPStatus != 404 {
		t.Errorf("err = %v", e)
	}
}
