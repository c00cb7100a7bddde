package dhis2test

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// Tests of the aggregate data exchange endpoints (spec dhis2.md §10).

// sampleExchangeCells computes, from the sample's facts, the facility-level
// data values an exchange request over pis for months yields under
// outputIdScheme=ATTRIBUTE:<AGG_DE_CODE>: aggregate data element code,
// period, facility UID, export COC, export AOC → value (zeros left out).
func sampleExchangeCells(t *testing.T, srv *Server, pis []string, months ...string) map[string]string {
	t.Helper()
	m := srv.Metadata()
	sums := map[string]float64{}
	for _, f := range srv.Facts() {
		p := m.ProgramIndicator(f.DX)
		if p == nil || !slices.Contains(months, f.Period) || !slices.ContainsFunc(pis, func(s string) bool { return m.ProgramIndicator(s) == p }) {
			continue
		}
		key := strings.Join([]string{p.AttributeValues[SampleAttributeAggDECode], f.Period, m.OrgUnit(f.OrgUnit).ID,
			p.AggregateExportCategoryOptionCombo, p.AggregateExportAttributeOptionCombo}, "|")
		sums[key] += f.Value
	}
	out := map[string]string{}
	for k, v := range sums {
		if v != 0 {
			out[k] = strconv.Itoa(int(v))
		}
	}
	return out
}

// §10.7, §10.3, §6.4: the source data value sets of the sample's EXTERNAL
// exchange (LAST_12_MONTHS at 2024-03-15 → 202303..202402; facts exist for
// 2024) equal the facts, keyed by the AGG_DE_CODE attribute; ?outputIdScheme
// overrides the general output scheme.
func TestExchangeSourceDataValueSets(t *testing.T) {
	srv := epServer(t)
	r := epGet(t, srv, "/api/aggregateDataExchanges/"+SampleExchangeTrackerToHMIS+"/sourceDataValueSets")
	epWantStatus(t, r, http.StatusOK)
	sets := r.json(t).([]any)
	if len(sets) != 2 {
		t.Fatalf("%d data value sets, want one per request (2)", len(sets))
	}
	ex := srv.Metadata().exchange(SampleExchangeTrackerToHMIS)
	for i, set := range sets {
		var vals []map[string]any
		for _, v := range set.(map[string]any)["dataValues"].([]any) {
			vals = append(vals, v.(map[string]any))
		}
		got := epCells(t, vals)
		want := sampleExchangeCells(t, srv, ex.Source.Requests[i].DX, "202401", "202402")
		if len(got) != len(want) || len(want) < 30 {
			t.Errorf("request %d: %d values, want %d", i, len(got), len(want))
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("request %d: %s = %q, want %s", i, k, got[k], v)
			}
		}
	}
	// spot check: BCG female <1 at KL_N_F1 in February 2024
	if got := epCells(t, anyMaps(sets[0])); got["EPI_BCG|202402|"+SampleOrgUnitKLNF1+"|"+SampleCOCFemaleLT1+"|"] != "20" {
		t.Error("EPI_BCG/202402/KL_N_F1/F_LT1 is not 20")
	}
	r = epGet(t, srv, "/api/aggregateDataExchanges/"+SampleExchangeTrackerToHMIS+"/sourceDataValueSets?outputIdScheme=CODE")
	first := anyMaps(r.json(t).([]any)[0])[0]
	if first["dataElement"] != "PI_BCG_F_LT1" || first["orgUnit"] != "KL_N_F1" || first["categoryOptionCombo"] != SampleCOCFemaleLT1 {
		t.Errorf("with outputIdScheme=CODE: %v", first)
	}
	epWantError(t, epGet(t, srv, "/api/aggregateDataExchanges/XXXXXXXXXXX/sourceDataValueSets"), http.StatusNotFound, "",
		"AggregateDataExchange with id XXXXXXXXXXX could not be found.")
}

func anyMaps(set any) []map[string]any {
	var out []map[string]any
	for _, v := range set.(map[string]any)["dataValues"].([]any) {
		out = append(out, v.(map[string]any))
	}
	return out
}

// §10.7: sourceData answers analytics grids (dx, pe, ou, value).
func TestExchangeSourceData(t *testing.T) {
	srv := epServer(t)
	grids := epGet(t, srv, "/api/aggregateDataExchanges/"+SampleExchangePIToAggregate+"/sourceData").json(t).([]any)
	if len(grids) != 1 {
		t.Fatalf("%d grids", len(grids))
	}
	g := grids[0].(map[string]any)
	var names []string
	for _, h := range g["headers"].([]any) {
		names = append(names, h.(map[string]any)["name"].(string))
	}
	rows := g["rows"].([]any)
	if strings.Join(names, ",") != "dx,pe,ou,value" || g["width"] != 4.0 || int(g["height"].(float64)) != len(rows) || len(rows) == 0 {
		t.Errorf("grid = %v", g)
	}
	found := false
	for _, row := range rows {
		r := row.([]any)
		if r[0] == "MAL_TREATED" && r[1] == "202402" && r[2] == SampleOrgUnitKLNF1 {
			found = r[3] == "18"
		}
	}
	if !found {
		t.Error("no row MAL_TREATED/202402/KL_N_F1 = 18")
	}
}

// §10.3, §10.5: running the INTERNAL sample exchange imports the indicators
// as this instance's aggregate values (data elements by CODE); 2.40.0
// answers bare ImportSummaries, 2.41 a WebMessage; a second run changes
// nothing.
func TestExchangeRunInternal(t *testing.T) {
	for _, ver := range []string{"2.40", "2.41"} {
		t.Run(ver, func(t *testing.T) {
			srv := epServer(t, WithVersion(ver))
			r := epDo(t, srv, http.MethodPost, "/api/aggregateDataExchanges/"+SampleExchangePIToAggregate+"/exchange", "", "")
			epWantStatus(t, r, http.StatusOK)
			sums := r.obj(t)
			if ver == "2.41" {
				if sums["message"] != "Import was successful." {
					t.Errorf("WebMessage = %s", r.raw)
				}
				sums = sums["response"].(map[string]any)
			}
			ex := srv.Metadata().exchange(SampleExchangePIToAggregate)
			want := sampleExchangeCells(t, srv, ex.Source.Requests[0].DX, "202401", "202402", "202403")
			if sums["responseType"] != "ImportSummaries" || sums["status"] != "SUCCESS" || int(sums["imported"].(float64)) != len(want) ||
				int(sums["total"].(float64)) != len(want) || len(sums["importSummaries"].([]any)) != 1 {
				t.Errorf("summaries = %.400s", r.raw)
			}
			if n := srv.Store().Len(); n != len(want) {
				t.Errorf("store has %d values, want %d", n, len(want))
			}
			for k, v := range want {
				p := strings.Split(k, "|")
				val, ok := srv.Lookup(p[0], p[1], p[2], p[3], p[4])
				if !ok || val.Value != v || val.Comment != "[aggregated]" {
					t.Errorf("%s: stored %+v, want %s", k, val, v)
				}
			}
			r = epDo(t, srv, http.MethodPost, "/api/aggregateDataExchanges/"+SampleExchangePIToAggregate+"/exchange", "", "")
			sums = r.obj(t)
			if ver == "2.41" {
				sums = sums["response"].(map[string]any)
			}
			if sums["imported"] != 0.0 || int(sums["ignored"].(float64)) != len(want) {
				t.Errorf("second run = %.300s", r.raw)
			}
		})
	}
}

// externalTarget starts a target DHIS2 and points the sample's EXTERNAL
// exchange at it with api.
func externalTarget(t *testing.T, srv *Server, api ExchangeAPI, targetOpts ...Option) *Server {
	t.Helper()
	target := epServer(t, targetOpts...)
	if api.URL == "" {
		api.URL = target.URL
	}
	if err := srv.UpdateMetadata(func(m *Metadata) error {
		m.exchange(SampleExchangeTrackerToHMIS).Target.API = &api
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return target
}

// §10.4: the EXTERNAL push as DHIS2's client makes it, per version: URL
// {url}/api/dataValueSets, JSON headers, ApiToken or Basic, query
// parameters only when not default (≤ 2.42; skipAudit=true from 2.41.1) or
// always importStrategy/skipAudit/dryRun (2.43+).
func TestExchangeRunExternal(t *testing.T) {
	cases := []struct {
		ver   string
		api   ExchangeAPI
		query string
	}{
		{"2.40", ExchangeAPI{AccessToken: SampleToken}, "dataElementIdScheme=CODE"},
		{"2.41.1", ExchangeAPI{Username: SampleUser, Password: SamplePassword}, "dataElementIdScheme=CODE&skipAudit=true"},
		{"2.43", ExchangeAPI{AccessToken: SampleToken}, "dataElementIdScheme=CODE&dryRun=false&importStrategy=CREATE_AND_UPDATE&skipAudit=true"},
	}
	for _, c := range cases {
		t.Run(c.ver, func(t *testing.T) {
			srv := epServer(t, WithVersion(c.ver))
			target := externalTarget(t, srv, c.api)
			r := epDo(t, srv, http.MethodPost, "/api/aggregateDataExchanges/"+SampleExchangeTrackerToHMIS+"/exchange", "", "")
			epWantStatus(t, r, http.StatusOK)
			sums := r.obj(t)
			if resp, ok := sums["response"].(map[string]any); ok {
				sums = resp
			}
			reqs := target.Requests()
			if len(reqs) != 2 {
				t.Fatalf("target got %d requests, want 2", len(reqs))
			}
			for _, q := range reqs {
				if q.Method != http.MethodPost || q.Path != "/dhis/api/dataValueSets" || q.RawQuery != c.query || q.User != SampleUser ||
					q.Header.Get("Content-Type") != "application/json" || q.Header.Get("Accept") != "application/json" {
					t.Errorf("pushed %s %s?%s as %q, headers %v", q.Method, q.Path, q.RawQuery, q.User, q.Header)
				}
			}
			imm := sampleExchangeCells(t, srv, srv.Metadata().exchange(SampleExchangeTrackerToHMIS).Source.Requests[0].DX, "202401", "202402")
			mal := sampleExchangeCells(t, srv, srv.Metadata().exchange(SampleExchangeTrackerToHMIS).Source.Requests[1].DX, "202401", "202402")
			total := len(imm) + len(mal)
			if sums["status"] != "SUCCESS" || target.Store().Len() != total {
				t.Errorf("status %v, target holds %d values, want %d: %.300s", sums["status"], target.Store().Len(), total, r.raw)
			}
			counted := int(sums["imported"].(float64) + sums["updated"].(float64))
			if counted != total {
				t.Errorf("imported+updated = %d, want %d", counted, total)
			}
			if v, ok := target.Lookup("EPI_BCG", "202402", "KL_N_F1", "F_LT1", ""); !ok || v.Value != "20" {
				t.Errorf("target EPI_BCG/202402/KL_N_F1/F_LT1 = %+v", v)
			}
			if v, ok := target.Lookup("MAL_CONFIRMED", "202401", "KL_N_F1", "M_1TO4", "GOV"); !ok || v.Value != "6" {
				t.Errorf("target MAL_CONFIRMED/202401/KL_N_F1/M_1TO4/GOV = %+v", v)
			}
		})
	}
}

// §10.4, §10.5: a 409 WARNING from the target is read as a WebMessage and
// makes the run WARNING (409 from 2.41); other 4xx become ERROR with the
// client's message; missing credentials fail before any request.
func TestExchangeRunExternalFailures(t *testing.T) {
	srv := epServer(t, WithVersion("2.41"))
	// kl_north may only write KL_NORTH: the southern values conflict (E7617)
	target := externalTarget(t, srv, ExchangeAPI{Username: SampleDistrictUser, Password: SampleDistrictPassword})
	r := epDo(t, srv, http.MethodPost, "/api/aggregateDataExchanges/"+SampleExchangeTrackerToHMIS+"/exchange", "", "")
	epWantStatus(t, r, http.StatusConflict)
	b := r.obj(t)
	sums := b["response"].(map[string]any)
	if b["status"] != "WARNING" || b["message"] != "One or more conflicts encountered, please check import summary." || sums["status"] != "WARNING" {
		t.Errorf("run = %.400s", r.raw)
	}
	child := sums["importSummaries"].([]any)[0].(map[string]any)
	if child["status"] != "WARNING" || len(child["conflicts"].([]any)) == 0 || child["conflicts"].([]any)[0].(map[string]any)["errorCode"] != "E7617" {
		t.Errorf("child summary = %v", child)
	}
	if target.Store().Len() == 0 || int(sums["ignored"].(float64)) == 0 {
		t.Errorf("target values %d, ignored %v", target.Store().Len(), sums["ignored"])
	}

	for _, c := range []struct {
		api  ExchangeAPI
		desc string
	}{
		{ExchangeAPI{Username: SampleUser, Password: "wrong"}, "Data import to target instance failed with status: '401 UNAUTHORIZED'"},
		{ExchangeAPI{}, "DHIS 2 client authentication not specified"},
	} {
		srv := epServer(t, WithVersion("2.41"))
		target := externalTarget(t, srv, c.api)
		r := epDo(t, srv, http.MethodPost, "/api/aggregateDataExchanges/"+SampleExchangeTrackerToHMIS+"/exchange", "", "")
		epWantStatus(t, r, http.StatusConflict)
		sums := r.obj(t)["response"].(map[string]any)
		child := sums["importSummaries"].([]any)[0].(map[string]any)
		if sums["status"] != "ERROR" || child["description"] != c.desc {
			t.Errorf("%+v: %.400s", c.api, r.raw)
		}
		if c.api.Username == "" && len(target.Requests()) != 0 {
			t.Error("request sent without credentials")
		}
	}
}

// §10.3: POST /api/aggregateDataExchanges/exchange runs an inline exchange;
// 2.38 has no exchanges.
func TestExchangeInline(t *testing.T) {
	srv := epServer(t, WithVersion("2.39.6"))
	body := `{"name":"inline","source":{"requests":[{"name":"treated","dx":["PI_MAL_TREATED"],"pe":["202402"],` +
		`"ou":["KL_S_F1"],"inputIdScheme":"CODE","outputIdScheme":"ATTRIBUTE:` + SampleAttributeAggDECode + `"}]},` +
		`"target":{"type":"INTERNAL","request":{"dataElementIdScheme":"CODE"}}}`
	r := epDo(t, srv, http.MethodPost, "/api/aggregateDataExchanges/exchange", "application/json", body)
	epWantStatus(t, r, http.StatusOK)
	if b := r.obj(t); b["message"] != "Import was successful." || b["response"].(map[string]any)["imported"] != 1.0 {
		t.Errorf("run = %s", r.raw)
	}
	if v, ok := srv.Lookup("MAL_TREATED", "202402", "KL_S_F1", "", "GOV"); !ok || v.Value != "12" {
		t.Errorf("MAL_TREATED/202402/KL_S_F1/GOV = %+v", v)
	}
	old := epServer(t, WithVersion("2.38"))
	epWantStatus(t, epDo(t, old, http.MethodPost, "/api/aggregateDataExchanges/exchange", "application/json", body), http.StatusNotFound)
}
