package dhis2

import (
	"context"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/tally-hmis/tally/transform"
)

// export240: §4.2's writer: header first, every field present (null when empty), a
// deleted row when includeDeleted=true.
const export240 = `{"dataSet":"EPI_MONTHLY","completeDate":"2024-02-03","period":"202401","orgUnit":"KL_N_F1",
 "dataValues":[
  {"dataElement":"EPI_BCG","period":"202401","orgUnit":"KL_N_F1","categoryOptionCombo":"F_LT1","attributeOptionCombo":"default",
   "value":"12","storedBy":"admin","created":"2024-02-01T10:00:00.000+0000","lastUpdated":"2024-02-01T10:00:00.000+0000","comment":null,"followup":false},
  {"dataElement":"EPI_PENTA1","period":"202401","orgUnit":"KL_N_F1","categoryOptionCombo":"F_LT1","attributeOptionCombo":"default",
   "value":"9","storedBy":"admin","created":"2024-02-01T10:00:00.000+0000","lastUpdated":"2024-02-02T10:00:00.000+0000","comment":"late","followup":true,"deleted":true}]}`

// export243: the 2.43+ writer with a category option combo written as category → option.
const export243 = `{"dataValues":[
  {"dataElement":"EPI_BCG","period":"202401","orgUnit":"KL_N_F1","categoryOptionCombo":{"SEX":"F","AGE":"LT1"},
   "attributeOptionCombo":"default","value":"12","storedBy":"admin","followup":false}]}`

const body409E2001 = `{"httpStatus":"Conflict","httpStatusCode":409,"status":"ERROR",
 "message":"At least one data element, data set or data element group must be specified","errorCode":"E2001"}`

func TestExportQuery(t *testing.T) {
	tests := []struct {
		name    string
		req     ExportRequest
		want    url.Values
		wantErr string
	}{
		{
			name: "data sets, periods, org units with children",
			req: ExportRequest{DataSets: []string{"EPI_MONTHLY", "MAL_MONTHLY"}, Periods: []string{"202401", "202402"},
				OrgUnits: []string{"KL"}, Children: true, IncludeDeleted: true,
				Schemes:       transform.IDSchemes{IDScheme: "code", OrgUnit: "ATTRIBUTE:AggDeCode01", AttributeOptionCombo: "CODE"},
				InputIDScheme: "CODE", InputOrgUnitIDScheme: "code"},
			want: url.Values{"dataSet": {"EPI_MONTHLY", "MAL_MONTHLY"}, "period": {"202401", "202402"}, "orgUnit": {"KL"},
				"children": {"true"}, "includeDeleted": {"true"}, "idScheme": {"CODE"}, "orgUnitIdScheme": {"ATTRIBUTE:AggDeCode01"},
				"attributeOptionComboIdScheme": {"CODE"}, "inputIdScheme": {"CODE"}, "inputOrgUnitIdScheme": {"CODE"}},
		},
		{
			name: "date range, groups, limit, extra",
			req: ExportRequest{DataElementGroups: []string{"deg"}, StartDate: "2024-01-01", EndDate: "2024-03-31",
				OrgUnitGroups: []string{"oug"}, AttributeOptionCombos: []string{"GOV"}, Limit: 500,
				Extra: url.Values{"compression": {"gzip"}}},
			want: url.Values{"dataElementGroup": {"deg"}, "startDate": {"2024-01-01"}, "endDate": {"2024-03-31"},
				"orgUnitGroup": {"oug"}, "attributeOptionCombo": {"GOV"}, "limit": {"500"}, "compression": {"gzip"}},
		},
		{
			name: "changed since",
			req:  ExportRequest{DataElements: []string{"EPI_BCG"}, LastUpdatedDuration: "10d", OrgUnits: []string{"KL"}},
			want: url.Values{"dataElement": {"EPI_BCG"}, "lastUpdatedDuration": {"10d"}, "orgUnit": {"KL"}},
		},
		{name: "no what", req: ExportRequest{Periods: []string{"202401"}, OrgUnits: []string{"KL"}}, wantErr: "E2001"},
		{name: "no when", req: ExportRequest{DataSets: []string{"d"}, OrgUnits: []string{"KL"}}, wantErr: "E2002"},
		{name: "half a range", req: ExportRequest{DataSets: []string{"d"}, StartDate: "2024-01-01", OrgUnits: []string{"KL"}}, wantErr: "go together"},
		{name: "no where", req: ExportRequest{DataSets: []string{"d"}, Periods: []string{"202401"}}, wantErr: "E2006"},
		{name: "empty id", req: ExportRequest{DataSets: []string{""}, Periods: []string{"202401"}, OrgUnits: []string{"KL"}}, wantErr: "dataSet[0]"},
		{name: "bad scheme", req: ExportRequest{DataSets: []string{"d"}, Periods: []string{"1"}, OrgUnits: []string{"KL"},
			Schemes: transform.IDSchemes{DataElement: "SHORT"}}, wantErr: "dataElementIdScheme"},
		{name: "extra repeats a field", req: ExportRequest{DataSets: []string{"d"}, Periods: []string{"1"}, OrgUnits: []string{"KL"},
			Extra: url.Values{"orgUnit": {"x"}}}, wantErr: `"orgUnit"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := tt.req.query()
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

func TestDataValueSets(t *testing.T) {
	req := ExportRequest{DataSets: []string{"EPI_MONTHLY"}, Periods: []string{"202401"}, OrgUnits: []string{"KL_N_F1"},
		IncludeDeleted: true, Schemes: transform.IDSchemes{IDScheme: transform.SchemeCode}}
	tests := []struct {
		name    string
		handler http.HandlerFunc
		values  []transform.DataValue
		group   transform.Group
		kind    Kind
		msg     string
	}{
		{
			name:    "2.40 export with header and a deleted value",
			handler: reply(200, jsonCT, export240),
			group:   transform.Group{DataSet: "EPI_MONTHLY", CompleteDate: "2024-02-03"},
			values: []transform.DataValue{
				{DataElement: "EPI_BCG", Period: "202401", OrgUnit: "KL_N_F1", CategoryOptionCombo: "F_LT1", AttributeOptionCombo: "default", Value: "12", StoredBy: "admin"},
				{DataElement: "EPI_PENTA1", Period: "202401", OrgUnit: "KL_N_F1", CategoryOptionCombo: "F_LT1", AttributeOptionCombo: "default", Value: "9", StoredBy: "admin",
					Comment: "late", FollowUp: true, Deleted: true, Index: 1},
			},
		},
		{
			name:    "2.43 export with categories",
			handler: reply(200, jsonCT, export243),
			values: []transform.DataValue{
				{DataElement: "EPI_BCG", Period: "202401", OrgUnit: "KL_N_F1", AttributeOptionCombo: "default", Value: "12", StoredBy: "admin",
					Categories: []transform.CategoryOption{{Category: "SEX", Option: "F"}, {Category: "AGE", Option: "LT1"}}},
			},
		},
		{name: "E2001", handler: reply(409, jsonCT, body409E2001), kind: KindPermanent, msg: "E2001 At least one data element"},
		{name: "401 token", handler: reply(401, jsonCT, body401Token), kind: KindPermanent, msg: "API token"},
		{name: "503", handler: reply(503, "text/plain", "upstream unavailable", "Retry-After", "7"), kind: KindTransient, msg: "retry after 7s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.handle("GET /api/dataValueSets", tt.handler)
			c := newTestClient(t, f.url())
			sink := &collectSink{}
			n, err := c.DataValueSets(context.Background(), req, sink)
			q := f.requests()[0].Query
			if q.Get("dataSet") != "EPI_MONTHLY" || q.Get("includeDeleted") != "true" || q.Get("idScheme") != "CODE" {
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
			if n != len(tt.values) || !reflect.DeepEqual(sink.values, tt.values) {
				t.Errorf("values (%d) =\n %+v\nwant\n %+v", n, sink.values, tt.values)
			}
			if len(sink.groups) != 1 || sink.groups[0].DataSet != tt.group.DataSet || sink.groups[0].CompleteDate != tt.group.CompleteDate {
				t.Errorf("groups = %+v, want %+v", sink.groups, tt.group)
			}
		})
	}
}
