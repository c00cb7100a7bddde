package dhis2

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/tally-hmis/tally/transform"
)

// Registration summaries (§8): ERROR only when every registration was ignored; conflicts
// in the old {object,value} form.
const (
	cdsr240Success = `{"httpStatus":"OK","httpStatusCode":200,"status":"OK","message":"Import was successful.",
 "response":{"responseType":"ImportSummary","status":"SUCCESS","importOptions":{"idSchemes":{},"dryRun":false},
  "description":"Import process complete.","importCount":{"imported":1,"updated":0,"ignored":1,"deleted":0},
  "conflicts":[{"object":"202413","value":"Period not valid"}]}}`
	cdsr240Error = `{"httpStatus":"Conflict","httpStatusCode":409,"status":"ERROR","message":"An error occurred, please check import summary.",
 "response":{"responseType":"ImportSummary","status":"ERROR","description":"Import process complete.",
  "importCount":{"imported":0,"updated":0,"ignored":1,"deleted":0},
  "conflicts":[{"object":"NOPE1234567","value":"Data set not found or not accessible"}]}}`
	cdsr236 = `{"responseType":"ImportSummary","status":"SUCCESS","description":"Import process complete.",
 "importCount":{"imported":0,"updated":2,"ignored":0,"deleted":0}}`
)

func TestRegisterCompleteness(t *testing.T) {
	no := false
	regs := []Registration{
		{DataSet: "EPI_MONTHLY", Period: "202401", OrgUnit: "KL_N_F1", StoredBy: "tally"},
		{DataSet: "MAL_MONTHLY", Period: "202401", OrgUnit: "KL_N_F1", AttributeOptionCombo: "GOV", Date: "2024-02-03", Completed: &no},
	}
	const wantBody = `{"completeDataSetRegistrations":[` +
		`{"dataSet":"EPI_MONTHLY","period":"202401","organisationUnit":"KL_N_F1","storedBy":"tally"},` +
		`{"dataSet":"MAL_MONTHLY","period":"202401","organisationUnit":"KL_N_F1","attributeOptionCombo":"GOV","date":"2024-02-03","completed":false}]}`
	tests := []struct {
		name    string
		opts    CompletenessOptions
		handler http.HandlerFunc
		query   url.Values
		status  ImportStatus
		counts  ImportCount
		known   bool
		kind    Kind
		msg     string
	}{
		{
			name:    "2.40 success with a conflict",
			opts:    CompletenessOptions{Schemes: transform.IDSchemes{IDScheme: "CODE", CategoryOptionCombo: "CODE"}, DryRun: true},
			handler: reply(200, jsonCT, cdsr240Success),
			query:   url.Values{"idScheme": {"CODE"}, "attributeOptionComboIdScheme": {"CODE"}, "dryRun": {"true"}},
			status:  StatusSuccess, counts: ImportCount{Imported: 1, Ignored: 1},
		},
		{
			name: "2.36 bare summary, every option",
			opts: CompletenessOptions{Schemes: transform.IDSchemes{DataSet: "code", OrgUnit: "ATTRIBUTE:MflCode0001", AttributeOptionCombo: "NAME"},
				ImportStrategy: "create_and_update", SkipExistingCheck: true},
			handler: reply(200, jsonCT, cdsr236),
			query: url.Values{"dataSetIdScheme": {"CODE"}, "orgUnitIdScheme": {"ATTRIBUTE:MflCode0001"}, "attributeOptionComboIdScheme": {"NAME"},
				"importStrategy": {"CREATE_AND_UPDATE"}, "skipExistingCheck": {"true"}},
			status: StatusSuccess, counts: ImportCount{Updated: 2}, known: true,
		},
		{name: "every registration ignored", handler: reply(409, jsonCT, cdsr240Error), query: url.Values{},
			kind: KindPermanent, msg: "Data set not found"},
		{name: "401", handler: reply(401, jsonCT, body401JSON), query: url.Values{}, kind: KindPermanent, msg: "Unauthorized"},
		{name: "500", handler: reply(500, "text/html", body502Proxy), query: url.Values{}, kind: KindTransient, msg: "502 Bad Gateway"},
		{name: "not a summary", handler: reply(200, jsonCT, `{"completeDataSetRegistrations":[]}`), query: url.Values{},
			kind: KindPermanent, msg: "not an import summary"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.handle("POST /api/completeDataSetRegistrations", tt.handler)
			c := newTestClient(t, f.url())
			r, err := c.RegisterCompleteness(context.Background(), regs, tt.opts)
			rq := f.requests()[0]
			if string(rq.Body) != wantBody || rq.Header.Get("Content-Type") != ContentTypeJSON {
				t.Errorf("body = %s (%s)", rq.Body, rq.Header.Get("Content-Type"))
			}
			if !reflect.DeepEqual(rq.Query, tt.query) {
				t.Errorf("query = %v, want %v", rq.Query, tt.query)
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
			if r.Status != tt.status || r.Counts != tt.counts || r.IndexesKnown != tt.known {
				t.Errorf("result = %+v", r)
			}
		})
	}
}

func TestRegisterCompletenessRefused(t *testing.T) {
	f := newFake(t)
	c := newTestClient(t, f.url())
	ctx := context.Background()
	cases := []struct {
		regs []Registration
		opts CompletenessOptions
	}{
		{regs: nil},
		{regs: []Registration{{DataSet: "EPI_MONTHLY", Period: "202401"}}},
		{regs: []Registration{{DataSet: "d", Period: "p", OrgUnit: "o"}}, opts: CompletenessOptions{ImportStrategy: "MERGE"}},
		{regs: []Registration{{DataSet: "d", Period: "p", OrgUnit: "o"}}, opts: CompletenessOptions{Schemes: transform.IDSchemes{OrgUnit: "PATH"}}},
	}
	for i, tc := range cases {
		if _, err := c.RegisterCompleteness(ctx, tc.regs, tc.opts); KindOf(err) != KindPermanent {
			t.Errorf("case %d: err = %v", i, err)
		}
	}
	if n := len(f.requests()); n != 0 {
		t.Errorf("%d requests sent", n)
	}
	// Completed is omitted when nil, so that DHIS2's default (true) applies.
	b, _ := json.Marshal(Registration{DataSet: "d", Period: "p", OrgUnit: "o"})
	if strings.Contains(string(b), "completed") {
		t.Errorf("%s", b)
	}
}
