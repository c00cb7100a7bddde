package dhis2

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tally-hmis/tally/transform"
)

// collectSink keeps what a decoder pushes; failAt > 0 makes the failAt-th value fail.
type collectSink struct {
	groups []transform.Group
	values []transform.DataValue
	failAt int
	err    error
}

func (s *collectSink) Group(g transform.Group) error { s.groups = append(s.groups, g); return nil }

func (s *collectSink) Value(v *transform.DataValue, _ transform.Locator) error {
	if s.failAt > 0 && len(s.values)+1 == s.failAt {
		return s.err
	}
	s.values = append(s.values, *v)
	return nil
}

// analytics240: §6.3's answer for a program indicator with export combos and a plain data
// element total (no combos), as 2.40 writes it (storedBy "[aggregated]" on early patches).
const analytics240 = `{"dataValues":[
 {"dataElement":"EPI_BCG","period":"202401","orgUnit":"KL_N_F1","categoryOptionCombo":"F_LT1",
  "value":"12","storedBy":"[aggregated]","comment":"[aggregated]","created":"2024-03-15","lastUpdated":"2024-03-15","followup":false},
 {"dataElement":"MAL_TREATED","period":"202401","orgUnit":"KL_N_F1",
  "value":"12.5","comment":"[aggregated]","created":"2024-03-15","lastUpdated":"2024-03-15","followup":false}]}`

const body409E7117 = `{"httpStatus":"Conflict","httpStatusCode":409,"status":"ERROR",
 "message":"A data dimension 'dx' must be specified when output format is DATA_VALUE_SET","errorCode":"E7117"}`

func TestAnalyticsQuery(t *testing.T) {
	base := AnalyticsRequest{DX: []string{"PI_BCG_F_LT1", "MAL_TREATED"}, PE: []string{"LAST_3_MONTHS", "202401"}, OU: []string{"KL", "LEVEL-3"}}
	tests := []struct {
		name    string
		mod     func(r *AnalyticsRequest)
		want    url.Values
		wantErr string
	}{
		{
			name: "dimensions only",
			want: url.Values{"dimension": {"dx:PI_BCG_F_LT1;MAL_TREATED", "pe:LAST_3_MONTHS;202401", "ou:KL;LEVEL-3"}},
		},
		{
			name: "every exchange field",
			mod: func(r *AnalyticsRequest) {
				r.Name, r.Visualization, r.DataSet = "EPI", "vizUID00001", "EPI_MONTHLY" // not sent
				r.Filters = []Filter{{Dimension: "FUNDING", Items: []string{"GOV", "NGO"}}, {Dimension: "co"}}
				r.AggregationType = "last"
				r.InputIDScheme = "code"
				r.OutputIDScheme = "CODE"
				r.OutputDataElementIDScheme = "ATTRIBUTE:AggDeCode01"
				r.OutputOrgUnitIDScheme = "CODE"
				r.OutputDataItemIDScheme = "ATTRIBUTE:AggDeCode01"
			},
			want: url.Values{
				"dimension":                 {"dx:PI_BCG_F_LT1;MAL_TREATED", "pe:LAST_3_MONTHS;202401", "ou:KL;LEVEL-3"},
				"filter":                    {"FUNDING:GOV;NGO", "co"},
				"aggregationType":           {"LAST"},
				"inputIdScheme":             {"CODE"},
				"outputIdScheme":            {"CODE"},
				"outputDataElementIdScheme": {"ATTRIBUTE:AggDeCode01"},
				"outputOrgUnitIdScheme":     {"CODE"},
				"outputDataItemIdScheme":    {"ATTRIBUTE:AggDeCode01"},
			},
		},
		{
			name: "analytics-only fields and extra",
			mod: func(r *AnalyticsRequest) {
				r.ApprovalLevel = "aprvLevel01"
				r.RelativePeriodDate = "2024-04-15"
				r.UserOrgUnit = []string{"KL_NORTH", "KL_SOUTH"}
				r.DuplicatesOnly = true
				r.SkipRounding = true
				r.Extra = url.Values{"measureCriteria": {"GE:1"}}
			},
			want: url.Values{
				"dimension":          {"dx:PI_BCG_F_LT1;MAL_TREATED", "pe:LAST_3_MONTHS;202401", "ou:KL;LEVEL-3"},
				"approvalLevel":      {"aprvLevel01"},
				"relativePeriodDate": {"2024-04-15"},
				"userOrgUnit":        {"KL_NORTH;KL_SOUTH"},
				"duplicatesOnly":     {"true"},
				"skipRounding":       {"true"},
				"measureCriteria":    {"GE:1"},
			},
		},
		{name: "no dx", mod: func(r *AnalyticsRequest) { r.DX = nil }, wantErr: "E7117"},
		{name: "no pe", mod: func(r *AnalyticsRequest) { r.PE = nil }, wantErr: "E7118"},
		{name: "no ou", mod: func(r *AnalyticsRequest) { r.OU = nil }, wantErr: "E7119"},
		{name: "empty item", mod: func(r *AnalyticsRequest) { r.OU = []string{"KL", " "} }, wantErr: "ou[1] is empty"},
		{name: "item with separator", mod: func(r *AnalyticsRequest) { r.DX = []string{"A;B"} }, wantErr: "may not contain"},
		{name: "bad scheme", mod: func(r *AnalyticsRequest) { r.OutputIDScheme = "SHORTNAME" }, wantErr: "outputIdScheme"},
		{name: "bad filter", mod: func(r *AnalyticsRequest) { r.Filters = []Filter{{Dimension: "pe:2024"}} }, wantErr: "filters[0]"},
		{name: "extra repeats a field", mod: func(r *AnalyticsRequest) { r.Extra = url.Values{"dimension": {"co"}} }, wantErr: `"dimension"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := base
			r.DX, r.PE, r.OU = append([]string(nil), base.DX...), append([]string(nil), base.PE...), append([]string(nil), base.OU...)
			if tt.mod != nil {
				tt.mod(&r)
			}
			q, err := r.query()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to mention %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(q, tt.want) {
				t.Errorf("query =\n %v\nwant\n %v", q, tt.want)
			}
		})
	}
}

// truncated answers with the start of body and then breaks the connection.
func truncated(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", jsonCT)
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		w.WriteHeader(200)
		io.WriteString(w, body[:len(body)/2])
		w.(http.Flusher).Flush()
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	}
}

func TestAnalyticsDataValueSet(t *testing.T) {
	sinkErr := errors.New("batch store full")
	req := AnalyticsRequest{DX: []string{"PI_BCG_F_LT1", "MAL_TREATED"}, PE: []string{"202401"}, OU: []string{"KL_N_F1"},
		OutputIDScheme: "CODE", OutputDataItemIDScheme: "ATTRIBUTE:AggDeCode01"}
	type want struct {
		kind   Kind // 0: success, or unclassified when err is set
		values int
		msg    string
		is     error
	}
	tests := []struct {
		name    string
		handler http.HandlerFunc
		sink    *collectSink
		cfg     func(*Config)
		ctx     func() (context.Context, context.CancelFunc)
		want    want
	}{
		{name: "values", handler: reply(200, jsonCT, analytics240), want: want{values: 2}},
		{name: "no rows", handler: reply(200, jsonCT, `{"dataValues":[]}`), want: want{values: 0}},
		{name: "empty object", handler: reply(200, jsonCT, `{}`), want: want{kind: KindPermanent, msg: "not a data value set"}},
		{name: "another resource", handler: reply(200, jsonCT, `{"pager":{"page":1},"dataElements":[]}`),
			want: want{kind: KindPermanent, msg: "not a data value set"}},
		{name: "E7117", handler: reply(409, jsonCT, body409E7117), want: want{kind: KindPermanent, msg: "E7117 A data dimension 'dx'"}},
		{name: "401", handler: reply(401, jsonCT, body401JSON), want: want{kind: KindPermanent, msg: "Unauthorized", is: ErrUnauthorized}},
		{name: "403 HTML", handler: reply(403, "text/html", body401HTML), want: want{kind: KindPermanent, is: ErrUnauthorized}},
		{name: "502 proxy", handler: reply(502, "text/html", body502Proxy), want: want{kind: KindTransient, msg: "502 Bad Gateway"}},
		{name: "200 proxy page", handler: reply(200, "text/html", "<html><head><title>Maintenance</title></head></html>"),
			want: want{kind: KindTransient, msg: "Maintenance"}},
		{name: "malformed JSON", handler: reply(200, jsonCT, `{"dataValues":[{"dataElement":}]}`),
			want: want{kind: KindPermanent, msg: "not a readable data value set"}},
		{name: "body breaks off", handler: truncated(analytics240), want: want{kind: KindTransient, msg: "reading the response failed"}},
		{name: "sink refuses", handler: reply(200, jsonCT, analytics240), sink: &collectSink{failAt: 2, err: sinkErr},
			want: want{values: 1, is: sinkErr}},
		{name: "hang past the timeout", handler: hang(t, nil), cfg: func(c *Config) { c.Timeout = 50 * time.Millisecond },
			want: want{kind: KindTransient, is: ErrTimeout}},
		{name: "caller cancels", handler: hang(t, nil),
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 30*time.Millisecond)
			},
			want: want{is: context.DeadlineExceeded}},
		{name: "streamed past MaxResponseBytes", handler: reply(200, jsonCT, manyValues(2000)),
			cfg: func(c *Config) { c.MaxResponseBytes = 1024 }, want: want{values: 2000}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.handle("GET /api/analytics/dataValueSet.json", tt.handler)
			var mods []func(*Config)
			if tt.cfg != nil {
				mods = append(mods, tt.cfg)
			}
			c := newTestClient(t, f.url(), mods...)
			ctx, cancel := context.WithCancel(context.Background())
			if tt.ctx != nil {
				ctx, cancel = tt.ctx()
			}
			defer cancel()
			sink := tt.sink
			if sink == nil {
				sink = &collectSink{}
			}
			n, err := c.AnalyticsDataValueSet(ctx, req, sink)

			reqs := f.requests()
			if len(reqs) != 1 {
				t.Fatalf("%d requests, want 1", len(reqs))
			}
			if q := reqs[0].Query; q.Get("outputIdScheme") != "CODE" || len(q["dimension"]) != 3 {
				t.Errorf("query = %v", q)
			}
			if reqs[0].Header.Get("Authorization") == "" || reqs[0].Header.Get("Accept") != "application/json" {
				t.Errorf("headers = %v", reqs[0].Header)
			}
			if n != tt.want.values || len(sink.values) != tt.want.values {
				t.Errorf("n = %d, sink has %d, want %d", n, len(sink.values), tt.want.values)
			}
			switch {
			case tt.want.kind != 0:
				e := wantKind(t, err, tt.want.kind)
				if !strings.Contains(e.Error(), tt.want.msg) {
					t.Errorf("err = %q, want it to mention %q", e, tt.want.msg)
				}
				if tt.want.is != nil && !errors.Is(err, tt.want.is) {
					t.Errorf("err = %v, want errors.Is %v", err, tt.want.is)
				}
				if strings.Contains(e.Error(), testPassword) {
					t.Errorf("credentials in %q", e)
				}
			case tt.want.is != nil:
				if !errors.Is(err, tt.want.is) {
					t.Fatalf("err = %v, want errors.Is %v", err, tt.want.is)
				}
				unclassified(t, err)
			case err != nil:
				t.Fatalf("err = %v", err)
			}
		})
	}
}

// TestAnalyticsValues checks what the sink receives from §6.3's answer.
func TestAnalyticsValues(t *testing.T) {
	f := newFake(t)
	f.handle("GET /api/analytics/dataValueSet.json", reply(200, jsonCT, analytics240))
	c := newTestClient(t, f.url())
	sink := &collectSink{}
	if _, err := c.AnalyticsDataValueSet(context.Background(), AnalyticsRequest{DX: []string{"x"}, PE: []string{"202401"}, OU: []string{"y"}}, sink); err != nil {
		t.Fatal(err)
	}
	want := []transform.DataValue{
		{DataElement: "EPI_BCG", Period: "202401", OrgUnit: "KL_N_F1", CategoryOptionCombo: "F_LT1", Value: "12", Index: 0},
		{DataElement: "MAL_TREATED", Period: "202401", OrgUnit: "KL_N_F1", Value: "12.5", Index: 1},
	}
	for i := range sink.values {
		sink.values[i].Index = i // the index is the decoder's business; compare positions
	}
	if !reflect.DeepEqual(sink.values, want) {
		t.Errorf("values =\n %+v\nwant\n %+v", sink.values, want)
	}
	if len(sink.groups) != 1 {
		t.Errorf("groups = %+v", sink.groups)
	}
}

func TestAnalyticsRefusedBeforeSending(t *testing.T) {
	f := newFake(t)
	c := newTestClient(t, f.url())
	_, err := c.AnalyticsDataValueSet(context.Background(), AnalyticsRequest{DX: []string{"x"}, PE: []string{"202401"}}, &collectSink{})
	e := wantKind(t, err, KindPermanent)
	if !strings.Contains(e.Error(), "E7119") {
		t.Errorf("err = %v", e)
	}
	_, err = c.AnalyticsDataValueSet(context.Background(), AnalyticsRequest{DX: []string{"x"}, PE: []string{"1"}, OU: []string{"y"}}, nil)
	wantKind(t, err, KindPermanent)
	if n := len(f.requests()); n != 0 {
		t.Errorf("%d requests sent", n)
	}
}

// manyValues is an analytics answer with n values.
func manyValues(n int) string {
	var b strings.Builder
	b.WriteString(`{"dataValues":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"dataElement":"CHW_HOUSEHOLD_VISITS","period":"2024%02d","orgUnit":"OU%07d","value":"%d","comment":"[aggregated]"}`, i%12+1, i, i)
	}
	b.WriteString(`]}`)
	return b.String()
}
