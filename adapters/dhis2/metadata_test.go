package dhis2

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/tally-hmis/tally/transform/metadata"
)

// orgUnitsJSON is the Kalima hierarchy as GET /api/organisationUnits?fields=... writes it.
var orgUnitsJSON = []string{
	`{"id":"KLcountry01","code":"KL","name":"Kalima","level":1,"path":"/KLcountry01"}`,
	`{"id":"KLnorth0001","code":"KL_NORTH","name":"North","level":2,"path":"/KLcountry01/KLnorth0001","parent":{"id":"KLcountry01"}}`,
	`{"id":"KLsouth0001","code":"KL_SOUTH","name":"South","level":2,"path":"/KLcountry01/KLsouth0001","parent":{"id":"KLcountry01"}}`,
	`{"id":"KLnf1000001","code":"KL_N_F1","name":"North F1","level":3,"path":"/KLcountry01/KLnorth0001/KLnf1000001","parent":{"id":"KLnorth0001"},
	  "attributeValues":[{"value":"F-001","attribute":{"id":"MflCode0001"}}]}`,
	`{"id":"KLnf2000001","code":"KL_N_F2","name":"North F2","level":3,"path":"/KLcountry01/KLnorth0001/KLnf2000001","parent":{"id":"KLnorth0001"}}`,
}

// pagedList answers GET /api/<resource> like DHIS2: everything under paging=false (unless
// ignorePagingFalse), otherwise page page of pageSize (default 50) with a pager.
func pagedList(t *testing.T, resource string, items []string, ignorePagingFalse bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("fields") == "" {
			t.Errorf("no fields parameter: %v", q)
		}
		w.Header().Set("Content-Type", jsonCT)
		if q.Get("paging") == "false" && !ignorePagingFalse {
			fmt.Fprintf(w, `{%q:[%s]}`, resource, strings.Join(items, ","))
			return
		}
		size, page := 50, 1
		if ignorePagingFalse && q.Get("pageSize") == "" {
			size = 2
		}
		if s := q.Get("pageSize"); s != "" {
			size, _ = strconv.Atoi(s)
		}
		if p := q.Get("page"); p != "" {
			page, _ = strconv.Atoi(p)
		}
		count := (len(items) + size - 1) / size
		from, to := min((page-1)*size, len(items)), min(page*size, len(items))
		next := ""
		if page < count {
			next = fmt.Sprintf(`,"nextPage":"http://x/api/%s?page=%d"`, resource, page+1)
		}
		fmt.Fprintf(w, `{"pager":{"page":%d,"pageCount":%d,"total":%d,"pageSize":%d%s},%q:[%s]}`,
			page, count, len(items), size, next, resource, strings.Join(items[from:to], ","))
	}
}

func TestOrganisationUnitsPaging(t *testing.T) {
	want := make([]OrganisationUnit, len(orgUnitsJSON))
	for i, s := range orgUnitsJSON {
		if err := json.Unmarshal([]byte(s), &want[i]); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name    string
		ignore  bool
		opts    ListOptions
		queries []string // page parameters of each request
	}{
		{name: "paging=false", queries: []string{"paging=false"}},
		{name: "server pages although paging=false", ignore: true, queries: []string{"paging=false", "page=2&pageSize=2", "page=3&pageSize=2"}},
		{name: "pages of two", opts: ListOptions{PageSize: 2}, queries: []string{"page=1&pageSize=2", "page=2&pageSize=2", "page=3&pageSize=2"}},
		{name: "one page", opts: ListOptions{PageSize: 10}, queries: []string{"page=1&pageSize=10"}},
		{name: "filters", opts: ListOptions{Filter: []string{"level:le:3", "code:in:[KL_N_F1,KL_N_F2]"}}, queries: []string{"paging=false"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.handle("GET /api/organisationUnits", pagedList(t, "organisationUnits", orgUnitsJSON, tt.ignore))
			c := newTestClient(t, f.url())
			got, err := c.OrganisationUnits(context.Background(), tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got %+v", got)
			}
			reqs := f.requests()
			if len(reqs) != len(tt.queries) {
				t.Fatalf("%d requests, want %d", len(reqs), len(tt.queries))
			}
			for i, r := range reqs {
				q := r.Query
				if q.Get("fields") != orgUnitFields || !reflect.DeepEqual(q["filter"], tt.opts.Filter) {
					t.Errorf("request %d: %v", i, q)
				}
				q.Del("fields")
				q.Del("filter")
				if q.Encode() != tt.queries[i] {
					t.Errorf("request %d pages with %q, want %q", i, q.Encode(), tt.queries[i])
				}
			}
			if ou := got[3]; ou.Parent == nil || ou.Parent.ID != "KLnorth0001" || ou.Level != 3 {
				t.Errorf("KL_N_F1 = %+v", ou)
			} else if v, ok := ou.Attr("MflCode0001"); !ok || v != "F-001" {
				t.Errorf("attribute = %q %v", v, ok)
			}
		})
	}
}

func TestListFailures(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
		opts    ListOptions
		kind    Kind
		msg     string
		is      error
	}{
		{name: "401", handler: reply(401, "text/html", body401HTML), kind: KindPermanent, msg: "401", is: ErrUnauthorized},
		{name: "redirect to login", handler: reply(302, "", "", "Location", "/hmis/dhis-web-commons/security/login.action"),
			kind: KindPermanent, msg: "login page", is: ErrUnauthorized},
		{name: "500", handler: reply(500, jsonCT, `{"httpStatus":"Internal Server Error","httpStatusCode":500,"status":"ERROR","message":"Hibernate"}`),
			kind: KindTransient, msg: "Hibernate"},
		{name: "wrong list", handler: reply(200, jsonCT, `{"pager":{"page":1,"pageCount":1},"dataElements":[]}`),
			kind: KindPermanent, msg: `no "organisationUnits" member`},
		{name: "not an object", handler: reply(200, jsonCT, `[1,2]`), kind: KindPermanent, msg: "not a list of organisationUnits"},
		{name: "list of the wrong shape", handler: reply(200, jsonCT, `{"organisationUnits":[{"id":7}]}`),
			kind: KindPermanent, msg: "not a list of organisationUnits"},
		{name: "proxy page", handler: reply(200, "text/html", "<html><head><title>Please log in</title></head></html>"),
			kind: KindTransient, msg: "Please log in"},
		{name: "pager that does not advance", opts: ListOptions{PageSize: 1},
			handler: reply(200, jsonCT, `{"pager":{"page":1,"pageCount":3,"pageSize":1},"organisationUnits":[`+orgUnitsJSON[0]+`]}`),
			kind:    KindPermanent, msg: "asked for page 2"},
		{name: "negative page size", opts: ListOptions{PageSize: -1}, kind: KindPermanent, msg: "PageSize"},
		{name: "empty filter", opts: ListOptions{Filter: []string{""}}, kind: KindPermanent, msg: "filter[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			if tt.handler != nil {
				f.handle("GET /api/organisationUnits", tt.handler)
			}
			c := newTestClient(t, f.url())
			_, err := c.OrganisationUnits(context.Background(), tt.opts)
			e := wantKind(t, err, tt.kind)
			if !strings.Contains(e.Error(), tt.msg) {
				t.Errorf("err = %q, want it to mention %q", e, tt.msg)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("err = %v, want %v", err, tt.is)
			}
		})
	}
}

// metadataFixtures are answers of each list as DHIS2 writes them for the Kalima sample.
var metadataFixtures = map[string][]string{
	"dataElements": {
		`{"id":"EpiBcg00001","code":"EPI_BCG","name":"BCG doses","valueType":"INTEGER_ZERO_OR_POSITIVE","domainType":"AGGREGATE",
		  "aggregationType":"SUM","zeroIsSignificant":true,"categoryCombo":{"id":"SexAge00001"},
		  "attributeValues":[{"value":"BCG","attribute":{"id":"AggDeCode01"}}]}`,
		`{"id":"MalRemark01","code":"MAL_REMARKS","name":"Malaria remarks","valueType":"LONG_TEXT","domainType":"AGGREGATE",
		  "aggregationType":"NONE","zeroIsSignificant":false,"categoryCombo":{"id":"bjDvmb4bfuf"}}`,
	},
	"categoryCombos": {
		`{"id":"SexAge00001","code":"SEX_AGE","name":"Sex and age","dataDimensionType":"DISAGGREGATION",
		  "categories":[{"id":"SexCat00001"},{"id":"AgeCat00001"}],
		  "categoryOptionCombos":[{"id":"FLt1coc0001"},{"id":"F1to4coc001"},{"id":"MLt1coc0001"},{"id":"M1to4coc001"}]}`,
	},
	"categories": {
		`{"id":"SexCat00001","code":"SEX","name":"Sex","dataDimensionType":"DISAGGREGATION","categoryOptions":[{"id":"OptF0000001"},{"id":"OptM0000001"}]}`,
	},
	"categoryOptions": {
		`{"id":"OptF0000001","code":"F","name":"Female"}`, `{"id":"OptM0000001","code":"M","name":"Male"}`,
	},
	"categoryOptionCombos": {
		`{"id":"FLt1coc0001","code":"F_LT1","name":"Female, <1","categoryCombo":{"id":"SexAge00001"},
		  "categoryOptions":[{"id":"OptF0000001"},{"id":"OptLt100001"}]}`,
	},
	"dataSets": {
		`{"id":"EpiMonthly1","code":"EPI_MONTHLY","name":"EPI monthly","periodType":"Monthly","categoryCombo":{"id":"bjDvmb4bfuf"},
		  "dataSetElements":[{"dataElement":{"id":"EpiBcg00001"}},{"dataElement":{"id":"EpiPenta001"},"categoryCombo":{"id":"SexAge00001"}}]}`,
	},
	"organisationUnits": orgUnitsJSON,
	"attributes": {
		`{"id":"AggDeCode01","code":"AGG_DE_CODE","name":"Aggregate data element code","valueType":"TEXT","unique":false,
		  "mandatory":false,"dataElementAttribute":true,"programIndicatorAttribute":true}`,
	},
	"programIndicators": {
		`{"id":"PiBcgFLt101","code":"PI_BCG_F_LT1","name":"BCG F <1","program":{"id":"EpiProg0001"},
		  "aggregateExportCategoryOptionCombo":"F_LT1","aggregateExportAttributeOptionCombo":"GOV",
		  "attributeValues":[{"value":"EPI_BCG","attribute":{"id":"AggDeCode01"}}]}`,
	},
}

func metadataFake(t *testing.T, pageSize int) *fake {
	f := newFake(t)
	for res, items := range metadataFixtures {
		f.handle("GET /api/"+res, pagedList(t, res, items, pageSize > 0))
	}
	return f
}

// TestMetadataReads decodes each list into the client's types and checks the fields asked
// for.
func TestMetadataReads(t *testing.T) {
	f := metadataFake(t, 0)
	c := newTestClient(t, f.url())
	ctx := context.Background()
	check := func(resource, fields string, got any, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", resource, err)
		}
		want := reflect.New(reflect.TypeOf(got)).Interface()
		if err := json.Unmarshal([]byte("["+strings.Join(metadataFixtures[resource], ",")+"]"), want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, reflect.ValueOf(want).Elem().Interface()) {
			t.Errorf("%s = %+v", resource, got)
		}
		for _, r := range f.requests() {
			if r.Path == basePath+"/api/"+resource && r.Query.Get("fields") != fields {
				t.Errorf("%s fields = %q", resource, r.Query.Get("fields"))
			}
		}
	}
	des, err := c.DataElements(ctx, ListOptions{})
	check("dataElements", dataElementFields, des, err)
	ccs, err := c.CategoryCombos(ctx, ListOptions{})
	check("categoryCombos", categoryComboFields, ccs, err)
	cats, err := c.Categories(ctx, ListOptions{})
	check("categories", categoryFields, cats, err)
	cos, err := c.CategoryOptions(ctx, ListOptions{})
	check("categoryOptions", categoryOptionFields, cos, err)
	cocs, err := c.CategoryOptionCombos(ctx, ListOptions{})
	check("categoryOptionCombos", categoryOptionComboField, cocs, err)
	dss, err := c.DataSets(ctx, ListOptions{})
	check("dataSets", dataSetFields, dss, err)
	ous, err := c.OrganisationUnits(ctx, ListOptions{})
	check("organisationUnits", orgUnitFields, ous, err)
	attrs, err := c.Attributes(ctx, ListOptions{})
	check("attributes", attributeFields, attrs, err)
	pis, err := c.ProgramIndicators(ctx, ListOptions{})
	check("programIndicators", programIndicatorFields, pis, err)

	if de := des[0]; de.Code != "EPI_BCG" || !de.ZeroIsSignificant || de.CategoryCombo.ID != "SexAge00001" {
		t.Errorf("data element = %+v", de)
	} else if v, _ := de.Attr("AggDeCode01"); v != "BCG" {
		t.Errorf("attribute = %q", v)
	}
	if ds := dss[0]; len(ds.DataSetElements) != 2 || ds.DataSetElements[0].CategoryCombo != nil || ds.DataSetElements[1].CategoryCombo.ID != "SexAge00001" {
		t.Errorf("data set = %+v", ds)
	}
	if pi := pis[0]; pi.AggregateExportCategoryOptionCombo != "F_LT1" || pi.AggregateExportAttributeOptionCombo != "GOV" {
		t.Errorf("program indicator = %+v", pi)
	} else if v, _ := pi.Attr("AggDeCode01"); v != "EPI_BCG" {
		t.Errorf("AGG_DE_CODE = %q", v)
	}
	if a := attrs[0]; !a.DataElementAttribute || !a.ProgramIndicatorAttribute || a.OrganisationUnitAttribute {
		t.Errorf("attribute = %+v", a)
	}
}

// TestFetchMappingMetadata fills mapping's snapshot with the fields mapping asks for,
// whole or page by page.
func TestFetchMappingMetadata(t *testing.T) {
	for _, pageSize := range []int{0, 1} {
		t.Run(fmt.Sprint("pageSize ", pageSize), func(t *testing.T) {
			f := metadataFake(t, pageSize)
			c := newTestClient(t, f.url())
			md, err := c.FetchMappingMetadata(context.Background(), ListOptions{PageSize: pageSize})
			if err != nil {
				t.Fatal(err)
			}
			counts := map[string]int{
				"dataElements": len(md.DataElements), "categoryCombos": len(md.CategoryCombos), "categories": len(md.Categories),
				"categoryOptions": len(md.CategoryOptions), "categoryOptionCombos": len(md.CategoryOptionCombos),
				"dataSets": len(md.DataSets), "organisationUnits": len(md.OrgUnits),
			}
			for res, n := range counts {
				if n != len(metadataFixtures[res]) {
					t.Errorf("%s: %d objects, want %d", res, n, len(metadataFixtures[res]))
				}
			}
			if de := md.DataElements[0]; de.Code != "EPI_BCG" || de.CategoryCombo.ID != "SexAge00001" || de.ValueType == "" {
				t.Errorf("data element = %+v", de)
			} else if v, ok := de.Attr("AggDeCode01"); !ok || v != "BCG" {
				t.Errorf("attribute = %q", v)
			}
			if ds := md.DataSets[0]; ds.PeriodType != "Monthly" || len(ds.DataSetElements) != 2 || ds.DataSetElements[1].CategoryCombo.ID != "SexAge00001" {
				t.Errorf("data set = %+v", ds)
			}
			asked := map[string]string{}
			for _, r := range f.requests() {
				asked[strings.TrimPrefix(r.Path, basePath+"/api/")] = r.Query.Get("fields")
			}
			for _, mr := range metadata.MetadataRequests() {
				if asked[mr.Resource] != mr.Fields {
					t.Errorf("%s asked with fields %q, want %q", mr.Resource, asked[mr.Resource], mr.Fields)
				}
			}
		})
	}
}

// TestAppendListsCoversMetadata: every list of metadata.Metadata, present and future, is
// carried over from a page.
func TestAppendListsCoversMetadata(t *testing.T) {
	var src metadata.Metadata
	v := reflect.ValueOf(&src).Elem()
	for i := range v.NumField() {
		if f := v.Field(i); f.Kind() == reflect.Slice {
			f.Set(reflect.MakeSlice(f.Type(), 1, 1))
		}
	}
	dst := &metadata.Metadata{}
	appendLists(dst, &src)
	appendLists(dst, &src)
	d := reflect.ValueOf(dst).Elem()
	for i := range d.NumField() {
		if f := d.Field(i); f.Kind() == reflect.Slice && f.Len() != 2 {
			t.Errorf("%s: %d objects after two pages", d.Type().Field(i).Name, f.Len())
		}
	}
}
