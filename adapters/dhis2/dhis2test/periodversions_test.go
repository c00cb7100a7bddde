package dhis2test

import (
	"fmt"
	"strings"
	"testing"
)

// Period types by release (spec dhis2.md §11.1; PeriodTypeEnum of 2.42 has
// QUARTERLY_NOV and FINANCIAL_SEP but not WEEKLY_FRIDAY, FINANCIAL_FEB,
// FINANCIAL_AUG): an id of a type the release does not have is "Period not
// valid" (E7611, DataValueImportConflict.PERIOD_NOT_VALID) on 2.38–2.42.
func TestPeriodTypesByVersion(t *testing.T) {
	ids := []string{"2018NovQ1", "2023Sep", "2024FriW3", "2023Feb", "2023Aug"}
	accepted := map[string][]string{
		"2.40": {},
		"2.41": {"2018NovQ1"},
		"2.42": {"2018NovQ1", "2023Sep"},
	}
	for ver, ok := range accepted {
		t.Run(ver, func(t *testing.T) {
			srv := newTestServer(t, WithVersion(ver))
			for i, id := range ids {
				r := postJSON(t, srv, "?idScheme=CODE", treated(id, fmt.Sprint(i+1)))
				sum := summaryOf(t, r)
				want := strings.Contains(strings.Join(ok, ","), id)
				if got := counts(t, sum)[0] == 1; got != want {
					t.Errorf("%s: imported=%v, want %v\n%s", id, got, want, r.raw)
				}
				if !want {
					cs := conflictsOf(sum)
					if len(cs) != 1 || cs[0]["errorCode"] != "E7611" || cs[0]["value"] != "Period not valid: `"+id+"`" {
						t.Errorf("%s: conflicts %v", id, cs)
					}
				}
			}
		})
	}
	// 2.43 knows every type: a WeeklyFriday data set takes 2024FriW3.
	t.Run("2.43", func(t *testing.T) {
		srv := newTestServer(t, WithVersion("2.43"))
		if err := srv.UpdateMetadata(func(m *Metadata) error {
			m.AddDataSet(DataSet{ID: "FriDataSet1", Code: "FRI_WEEKLY", Name: "Friday weekly", PeriodType: "WeeklyFriday",
				DataElements: []string{"CHW_HOUSEHOLD_VISITS"}, OrgUnits: []string{"KL_N_F1"}})
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		r := postJSON(t, srv, "?idScheme=CODE", `{"dataSet":"FRI_WEEKLY","dataValues":[{"dataElement":"CHW_HOUSEHOLD_VISITS","period":"2024FriW3","orgUnit":"KL_N_F1","value":"4"}]}`)
		if got := counts(t, summaryOf(t, r)); got != [4]int{0, 1, 0, 0} {
			t.Errorf("counts %v\n%s", got, r.raw)
		}
	})
}

// A DHIS2 of a release without a period type cannot hold a data set of
// that type: New and UpdateMetadata refuse such metadata.
func TestMetadataPeriodTypeByVersion(t *testing.T) {
	m := SampleMetadata()
	m.AddDataSet(DataSet{ID: "FriDataSet1", Name: "Friday weekly", PeriodType: "WeeklyFriday", DataElements: []string{"CHW_HOUSEHOLD_VISITS"}})
	if _, err := New(WithVersion("2.42"), WithMetadata(m)); err == nil || !strings.Contains(err.Error(), "WeeklyFriday does not exist before 2.43") {
		t.Errorf("2.42 accepted a WeeklyFriday data set: %v", err)
	}
	srv := newTestServer(t, WithVersion("2.40"))
	err := srv.UpdateMetadata(func(m *Metadata) error {
		m.AddDataSet(DataSet{ID: "NovDataSet1", Name: "Nov quarters", PeriodType: "QuarterlyNov", DataElements: []string{"CHW_HOUSEHOLD_VISITS"}})
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "QuarterlyNov does not exist before 2.41") {
		t.Errorf("2.40 accepted a QuarterlyNov data set: %v", err)
	}
}

// ADX: the Friday week (P7D) and the Feb/Aug/Sep years (P1Y) map to a
// period only from 2.43 (conformance periods.tsv; adx.md §6); before, the
// whole ADX import fails like DHIS2's AdxPeriod exception does.
func TestADXPeriodTypesByVersion(t *testing.T) {
	for _, tc := range []struct{ adx, id string }{{"2024-01-05/P7D", "2024FriW2"}, {"2024-09-01/P1Y", "2024Sep"}, {"2024-08-01/P1Y", "2024Aug"}} {
		v42, _ := ParseVersion("2.42")
		v43, _ := ParseVersion("2.43")
		if got, err := adxPeriodToID(tc.adx, v42); err == nil {
			t.Errorf("2.42 %s -> %s", tc.adx, got)
		}
		if got, err := adxPeriodToID(tc.adx, v43); err != nil || got != tc.id {
			t.Errorf("2.43 %s -> %s %v, want %s", tc.adx, got, err, tc.id)
		}
	}
	srv := newTestServer(t, WithVersion("2.42"))
	body := `<adx xmlns="urn:ihe:qrph:adx:2015"><group orgUnit="KL_N_F1" period="2024-01-05/P7D" dataSet="CHW_MONTHLY">` +
		`<dataValue dataElement="CHW_HOUSEHOLD_VISITS" value="3"/></group></adx>`
	r := do(t, srv, "POST", "/api/dataValueSets", "application/adx+xml", []byte(body))
	sum := summaryOf(t, r)
	if sum["status"] != "ERROR" || srv.Store().Len() != 0 {
		t.Errorf("2.42 Friday ADX: %s", r.raw)
	}
}
