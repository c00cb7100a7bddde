package dhis2_test

// Integration tests against the in-process emulator (dhis2test), with its bundled Kalima
// sample. Endpoints the emulator does not serve yet are probed first and their tests are
// skipped, naming the endpoint, until it does; the replay tests in package dhis2 cover
// the client's side of them meanwhile.

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tally-hmis/tally/adapters/dhis2"
	"github.com/tally-hmis/tally/adapters/dhis2/dhis2test"
	"github.com/tally-hmis/tally/transform"
)

func emulator(t *testing.T, opts ...dhis2test.Option) (*dhis2test.Server, *dhis2.Client) {
	t.Helper()
	srv := dhis2test.NewServer(append([]dhis2test.Option{dhis2test.WithT(t)}, opts...)...)
	c, err := dhis2.New(dhis2.Config{BaseURL: srv.URL, Username: dhis2test.SampleUser, Password: dhis2test.SamplePassword,
		Timeout: 5 * time.Second, PollInterval: time.Millisecond, MaxJobWait: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return srv, c
}

// needs skips the test when the emulator does not serve method on path (below /api).
// The probe is a GET, which creates nothing: a 404 means no such path, and a 405 whose
// Allow header lacks method means the path serves other methods only.
func needs(t *testing.T, srv *dhis2test.Server, method, path string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api"+path, nil)
	req.SetBasicAuth(dhis2test.SampleUser, dhis2test.SamplePassword)
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatalf("probing %s: %v", path, err)
	}
	resp.Body.Close()
	allowed := func() bool {
		for _, m := range strings.Split(resp.Header.Get("Allow"), ",") {
			if strings.EqualFold(strings.TrimSpace(m), method) {
				return true
			}
		}
		return false
	}
	switch {
	case resp.StatusCode == http.StatusNotFound,
		resp.StatusCode == http.StatusMethodNotAllowed && !allowed():
		t.Skipf("the emulator does not serve %s /api%s yet", method, path)
	}
	srv.ResetRequests()
}

// seed imports EPI_BCG for KL_N_F1, January 2024: F_LT1 12, M_LT1 9.
func seed(t *testing.T, c *dhis2.Client) {
	t.Helper()
	body := `{"dataSet":"EPI_MONTHLY","period":"202401","orgUnit":"KL_N_F1","dataValues":[
	 {"dataElement":"EPI_BCG","categoryOptionCombo":"F_LT1","value":"12"},
	 {"dataElement":"EPI_BCG","categoryOptionCombo":"M_LT1","value":"9"}]}`
	r, err := c.ImportDataValues(context.Background(), dhis2.Bytes(dhis2.ContentTypeJSON, []byte(body)),
		dhis2.ImportOptions{Schemes: transform.IDSchemes{IDScheme: transform.SchemeCode}})
	if err != nil || r.Counts.Written() != 2 {
		t.Fatalf("seeding: %+v, %v", r, err)
	}
}

type sink struct{ values []transform.DataValue }

func (s *sink) Group(transform.Group) error { return nil }
func (s *sink) Value(v *transform.DataValue, _ transform.Locator) error {
	s.values = append(s.values, *v)
	return nil
}

// startHeldImport starts an async import the emulator holds until RunPendingJobs, and
// returns its job id.
func startHeldImport(t *testing.T, srv *dhis2test.Server) string {
	t.Helper()
	body := `{"dataValues":[{"dataElement":"CHW_HOUSEHOLD_VISITS","period":"202401","orgUnit":"KL_N_F1","value":"40"}]}`
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/dataValueSets?async=true&idScheme=CODE", strings.NewReader(body))
	req.SetBasicAuth(dhis2test.SampleUser, dhis2test.SamplePassword)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var wm struct {
		Response struct {
			ID string `json:"id"`
		} `json:"response"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&wm); err != nil || wm.Response.ID == "" {
		t.Fatalf("async start: %d, %v", resp.StatusCode, err)
	}
	return wm.Response.ID
}

// TestEmulatorWaitTask polls a job the emulator holds: the wait runs out while the job is
// pending (transient), and completes once the job has run.
func TestEmulatorWaitTask(t *testing.T) {
	srv, c := emulator(t, dhis2test.WithHeldJobs())
	id := startHeldImport(t, srv)
	ctx := context.Background()

	_, err := c.WaitTask(ctx, "DATAVALUE_IMPORT", id, dhis2.WaitOptions{MaxWait: 30 * time.Millisecond})
	var e *dhis2.Error
	if !errors.As(err, &e) || e.Kind != dhis2.KindTransient || e.JobID != id || !strings.Contains(e.Message, "still running") {
		t.Fatalf("pending job: err = %v", err)
	}

	if n := srv.RunPendingJobs(); n != 1 {
		t.Fatalf("ran %d jobs", n)
	}
	job, err := c.WaitTask(ctx, "DATAVALUE_IMPORT", id, dhis2.WaitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if job.ID != id || job.Type != "DATAVALUE_IMPORT" || job.LastMessage != "Import done" || job.Failed || job.Polls != 1 {
		t.Errorf("job = %+v", job)
	}
	for _, r := range srv.Requests() {
		if r.Method == http.MethodGet && r.Path != srv.BasePath()+"/api/system/tasks/DATAVALUE_IMPORT/"+id {
			t.Errorf("polled %s", r.Path)
		}
	}
}

// TestEmulatorWaitTaskUnauthorized: the emulator's 401 is a permanent ErrUnauthorized.
func TestEmulatorWaitTaskUnauthorized(t *testing.T) {
	srv := dhis2test.NewServer(dhis2test.WithT(t))
	c, err := dhis2.New(dhis2.Config{BaseURL: srv.URL, Username: dhis2test.SampleUser, Password: "wrong-password"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.WaitTask(context.Background(), "DATAVALUE_IMPORT", "Job00000001", dhis2.WaitOptions{})
	if !errors.Is(err, dhis2.ErrUnauthorized) || !errors.Is(err, dhis2.ErrPermanent) {
		t.Fatalf("err = %v", err)
	}
}

func TestEmulatorAnalyticsDataValueSet(t *testing.T) {
	srv, c := emulator(t)
	needs(t, srv, http.MethodGet, "/analytics/dataValueSet.json")
	seed(t, c)
	s := &sink{}
	n, err := c.AnalyticsDataValueSet(context.Background(), dhis2.AnalyticsRequest{
		DX: []string{"EPI_BCG"}, PE: []string{"202401"}, OU: []string{"KL_N_F1"},
		InputIDScheme: "CODE", OutputIDScheme: "CODE",
	}, s)
	if err != nil {
		t.Fatal(err)
	}
	// §6.2: a plain data element is a total without combos; the value is a string and the
	// "[aggregated]" comment is dropped by the decoder.
	want := transform.DataValue{DataElement: "EPI_BCG", Period: "202401", OrgUnit: "KL_N_F1", Value: "21"}
	if n != 1 || len(s.values) != 1 {
		t.Fatalf("values = %+v", s.values)
	}
	if got := s.values[0]; got.DataElement != want.DataElement || got.Period != want.Period || got.OrgUnit != want.OrgUnit ||
		got.Value != want.Value || got.CategoryOptionCombo != "" || got.Comment != "" {
		t.Errorf("value = %+v, want %+v", got, want)
	}

	// A missing dimension is refused before sending; the emulator's E7117 is not reached.
	_, err = c.AnalyticsDataValueSet(context.Background(), dhis2.AnalyticsRequest{PE: []string{"202401"}, OU: []string{"KL"}}, s)
	if dhis2.KindOf(err) != dhis2.KindPermanent {
		t.Errorf("err = %v", err)
	}
}

func TestEmulatorDataValueSets(t *testing.T) {
	srv, c := emulator(t)
	needs(t, srv, http.MethodGet, "/dataValueSets")
	seed(t, c)
	for _, req := range []dhis2.ExportRequest{
		{DataSets: []string{dhis2test.SampleDataSetEPI}, Periods: []string{"202401"}, OrgUnits: []string{dhis2test.SampleOrgUnitKLNF1}},
		{DataSets: []string{dhis2test.SampleDataSetEPI}, StartDate: "2024-01-01", EndDate: "2024-01-31",
			OrgUnits: []string{dhis2test.SampleOrgUnitKL}, Children: true},
	} {
		req.Schemes = transform.IDSchemes{IDScheme: transform.SchemeCode}
		s := &sink{}
		n, err := c.DataValueSets(context.Background(), req, s)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, v := range s.values {
			if v.DataElement != "EPI_BCG" || v.Period != "202401" || v.OrgUnit != "KL_N_F1" {
				t.Errorf("value = %+v", v)
			}
			got[v.CategoryOptionCombo] = v.Value
		}
		if n != 2 || got["F_LT1"] != "12" || got["M_LT1"] != "9" {
			t.Errorf("%+v: values = %+v", req, s.values)
		}
	}
}

func TestEmulatorMetadata(t *testing.T) {
	srv, c := emulator(t)
	for _, p := range []string{"/dataElements", "/categoryCombos", "/categories", "/categoryOptions",
		"/categoryOptionCombos", "/dataSets", "/organisationUnits"} {
		needs(t, srv, http.MethodGet, p)
	}
	ctx := context.Background()
	md, err := c.FetchMappingMetadata(ctx, dhis2.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(md.OrgUnits) != 7 || len(md.DataSets) != 3 || len(md.DataElements) != 10 || len(md.CategoryOptionCombos) < 6 {
		t.Errorf("snapshot: %d org units, %d data sets, %d data elements, %d option combos",
			len(md.OrgUnits), len(md.DataSets), len(md.DataElements), len(md.CategoryOptionCombos))
	}
	for _, de := range md.DataElements {
		if de.Code == "EPI_BCG" && (de.ID != dhis2test.SampleDEEPIBCG || de.CategoryCombo.ID != dhis2test.SampleCategoryComboSexAge) {
			t.Errorf("EPI_BCG = %+v", de)
		}
	}
	for _, ds := range md.DataSets {
		if ds.Code == "MAL_MONTHLY" && (ds.CategoryCombo.ID != dhis2test.SampleCategoryComboFunding || len(ds.DataSetElements) != 4) {
			t.Errorf("MAL_MONTHLY = %+v", ds)
		}
	}

	ous, err := c.OrganisationUnits(ctx, dhis2.ListOptions{PageSize: 3})
	if err != nil {
		t.Fatal(err)
	}
	for _, ou := range ous {
		if ou.Code == "KL_N_F1" && (ou.Level != 3 || ou.Parent == nil || ou.Parent.ID != dhis2test.SampleOrgUnitKLNorth ||
			ou.Path != "/"+dhis2test.SampleOrgUnitKL+"/"+dhis2test.SampleOrgUnitKLNorth+"/"+dhis2test.SampleOrgUnitKLNF1) {
			t.Errorf("KL_N_F1 = %+v", ou)
		}
	}
	if len(ous) != 7 {
		t.Errorf("%d org units through pages of 3", len(ous))
	}
}

func TestEmulatorProgramIndicatorsAndAttributes(t *testing.T) {
	srv, c := emulator(t)
	needs(t, srv, http.MethodGet, "/programIndicators")
	needs(t, srv, http.MethodGet, "/attributes")
	ctx := context.Background()
	pis, err := c.ProgramIndicators(ctx, dhis2.ListOptions{Filter: []string{"code:eq:PI_MAL_TREATED"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(pis) != 1 || pis[0].AggregateExportAttributeOptionCombo != dhis2test.SampleAOCGov {
		t.Fatalf("program indicators = %+v", pis)
	}
	if v, ok := pis[0].Attr(dhis2test.SampleAttributeAggDECode); !ok || v != "MAL_TREATED" {
		t.Errorf("AGG_DE_CODE = %q", v)
	}
	attrs, err := c.Attributes(ctx, dhis2.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(attrs) != 1 || attrs[0].Code != "AGG_DE_CODE" {
		t.Errorf("attributes = %+v", attrs)
	}
}

func TestEmulatorRegisterCompleteness(t *testing.T) {
	srv, c := emulator(t)
	needs(t, srv, http.MethodPost, "/completeDataSetRegistrations")
	r, err := c.RegisterCompleteness(context.Background(),
		[]dhis2.Registration{{DataSet: "EPI_MONTHLY", Period: "202401", OrgUnit: "KL_N_F1"}},
		dhis2.CompletenessOptions{Schemes: transform.IDSchemes{IDScheme: transform.SchemeCode}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != dhis2.StatusSuccess || r.Counts.Imported != 1 {
		t.Errorf("result = %+v", r)
	}
	_, err = c.RegisterCompleteness(context.Background(),
		[]dhis2.Registration{{DataSet: "NOPE1234567", Period: "202401", OrgUnit: dhis2test.SampleOrgUnitKLNF1}},
		dhis2.CompletenessOptions{})
	if dhis2.KindOf(err) != dhis2.KindPermanent {
		t.Errorf("unknown data set: err = %v", err)
	}
}

func TestEmulatorSendMessage(t *testing.T) {
	srv, c := emulator(t)
	needs(t, srv, http.MethodPost, "/messageConversations")
	const admins = "AuMe57l9JuO" // user group ADMINS of the sample
	if _, err := c.SendMessage(context.Background(), "Tally: delivery failed", "3 values went to the dead-letter queue.",
		[]string{admins}, nil); err != nil {
		t.Fatal(err)
	}
}
