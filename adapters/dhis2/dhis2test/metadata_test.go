package dhis2test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The bundled sample follows DESIGN.md "Sample scenario" and the Sample*
// constants mirror sample/kalima.yaml.
func TestSampleMetadata(t *testing.T) {
	m := SampleMetadata()
	for code, uid := range map[string]string{
		"KL": SampleOrgUnitKL, "KL_NORTH": SampleOrgUnitKLNorth, "KL_SOUTH": SampleOrgUnitKLSouth,
		"KL_N_F1": SampleOrgUnitKLNF1, "KL_N_F2": SampleOrgUnitKLNF2, "KL_S_F1": SampleOrgUnitKLSF1, "KL_S_F2": SampleOrgUnitKLSF2,
	} {
		if ou := m.OrgUnit(code); ou == nil || ou.ID != uid {
			t.Errorf("org unit %s: %+v", code, ou)
		}
	}
	if ou := m.OrgUnit("KL_S_F2"); ou.Level != 3 || ou.Path != "/M0XvqZjxTW3/dAwVtRMflhb/nIj7BRd03Q2" {
		t.Errorf("KL_S_F2 level/path %d %s", ou.Level, ou.Path)
	}
	des := map[string]struct {
		uid, combo string
		zero       bool
	}{
		"EPI_BCG": {SampleDEEPIBCG, SampleCategoryComboSexAge, true}, "EPI_PENTA1": {SampleDEEPIPenta1, SampleCategoryComboSexAge, true},
		"EPI_MEASLES1": {SampleDEEPIMeasles1, SampleCategoryComboSexAge, false}, "MAL_CONFIRMED": {SampleDEMALConfirmed, SampleCategoryComboSexAge, true},
		"MAL_TREATED": {SampleDEMALTreated, DefaultCategoryComboUID, true}, "MAL_LLIN_DISTRIBUTED": {SampleDEMALLLINDistributed, DefaultCategoryComboUID, false},
		"MAL_REMARKS": {SampleDEMALRemarks, DefaultCategoryComboUID, false}, "CHW_HOUSEHOLD_VISITS": {SampleDECHWHouseholdVisits, DefaultCategoryComboUID, false},
		"CHW_U5_ASSESSMENTS": {SampleDECHWU5Assessments, DefaultCategoryComboUID, false}, "CHW_PREGNANCIES_REGISTERED": {SampleDECHWPregnanciesRegistered, DefaultCategoryComboUID, false},
	}
	for code, want := range des {
		de := m.DataElement(code)
		if de == nil || de.ID != want.uid || de.CategoryCombo != want.combo || de.ZeroIsSignificant != want.zero {
			t.Errorf("data element %s: %+v", code, de)
		}
	}
	if m.DataElement("MAL_REMARKS").ValueType != "TEXT" {
		t.Error("MAL_REMARKS must be text")
	}
	for code, want := range map[string]struct {
		uid, combo string
		des        []string
	}{
		"EPI_MONTHLY": {SampleDataSetEPI, DefaultCategoryComboUID, []string{SampleDEEPIBCG, SampleDEEPIPenta1, SampleDEEPIMeasles1}},
		"MAL_MONTHLY": {SampleDataSetMAL, SampleCategoryComboFunding, []string{SampleDEMALConfirmed, SampleDEMALTreated, SampleDEMALLLINDistributed, SampleDEMALRemarks}},
		"CHW_MONTHLY": {SampleDataSetCHW, DefaultCategoryComboUID, []string{SampleDECHWHouseholdVisits, SampleDECHWU5Assessments, SampleDECHWPregnanciesRegistered}},
	} {
		ds := m.DataSet(code)
		if ds == nil || ds.ID != want.uid || ds.CategoryCombo != want.combo || ds.PeriodType != "Monthly" || strings.Join(ds.DataElements, ",") != strings.Join(want.des, ",") {
			t.Errorf("data set %s: %+v", code, ds)
		}
	}
	for code, uid := range map[string]string{"F_LT1": SampleCOCFemaleLT1, "F_1TO4": SampleCOCFemale1To4, "M_LT1": SampleCOCMaleLT1,
		"M_1TO4": SampleCOCMale1To4, "GOV": SampleAOCGov, "NGO": SampleAOCNGO, "default": DefaultCategoryOptionComboUID} {
		if c := m.CategoryOptionCombo(code); c == nil || c.ID != uid {
			t.Errorf("option combo %s: %+v", code, c)
		}
	}
	pis := 0
	for _, pi := range m.ProgramIndicators {
		if pi.AttributeValues[SampleAttributeAggDECode] == "" || m.idx.coc[pi.AggregateExportCategoryOptionCombo] == nil {
			t.Errorf("program indicator %s: %+v", pi.Code, pi)
		}
		pis++
	}
	if pis != 13 || m.ProgramIndicator("PI_MAL_CONF_M_1TO4").AggregateExportCategoryOptionCombo != SampleCOCMale1To4 {
		t.Errorf("%d program indicators", pis)
	}
	u := m.User(SampleUser)
	if u == nil || u.Password != SamplePassword || u.Tokens[0].Key != SampleToken || u.Tokens[1].Key != SampleTokenV2 || !u.HasAuthority("F_DATAVALUE_ADD") {
		t.Errorf("user %+v", u)
	}
	// every UID in the sample file is a valid DHIS2 UID and the table in the
	// file header matches the objects
	sc := bufio.NewScanner(bytes.NewReader(SampleMetadataYAML()))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "#   ") {
			continue
		}
		fields := strings.Fields(strings.NewReplacer("|", " ", "#", " ").Replace(line))
		for i := 0; i+1 < len(fields); i++ {
			if IsUID(fields[i+1]) && !IsUID(fields[i]) && strings.ToUpper(fields[i]) == fields[i] {
				if !sampleHasUID(m, fields[i+1]) {
					t.Errorf("table entry %s %s not in the metadata", fields[i], fields[i+1])
				}
			}
		}
	}
}

func sampleHasUID(m *Metadata, uid string) bool {
	for k := range numKinds {
		if _, ok := m.idx.byKind[k][uid]; ok {
			return true
		}
	}
	return m.User(uid) != nil || m.idx.attr[uid] != nil
}

// Metadata loads from JSON and YAML files; bad references are reported.
func TestLoadMetadata(t *testing.T) {
	dir := t.TempDir()
	b, err := json.Marshal(SampleMetadata())
	if err != nil {
		t.Fatal(err)
	}
	jsonPath := filepath.Join(dir, "m.json")
	if err := os.WriteFile(jsonPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := LoadMetadata(jsonPath)
	if err != nil || m.DataElement("EPI_BCG") == nil {
		t.Fatalf("json: %v", err)
	}
	for _, f := range []string{"m-dvs.yaml", "m-dvs-243.yaml", "m-adx.yaml", "m-cht.yaml"} {
		if _, err := LoadMetadata(filepath.Join("conformance", "metadata", f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	bad := `dataElements:
  - {id: BadDe000001, code: X, name: X, categoryCombo: NOPE}
  - {id: short, code: Y, name: Y}
dataSets:
  - {id: BadDs000001, name: DS, periodType: Fortnightly, dataElements: [X, Z]}
`
	_, err = ParseMetadata([]byte(bad), "yaml")
	for _, want := range []string{`unknown categoryCombo "NOPE"`, `"short": id is not an 11-character DHIS2 UID`, `unknown periodType "Fortnightly"`, `unknown dataElement "Z"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want %q", err, want)
		}
	}
	if _, err := ParseMetadata([]byte("dataElements: []\nbogus: 1\n"), "yaml"); err == nil {
		t.Error("unknown field accepted")
	}
}

// "Fix the metadata and replay": an unknown data element is added at run
// time and the same payload then imports (spec dhis2.md §1.5 E7610).
func TestUpdateMetadataReplay(t *testing.T) {
	srv := newTestServer(t)
	body := `{"dataValues":[{"dataElement":"CHW_FAMILY_PLANNING","period":"202401","orgUnit":"KL_N_F1","value":"4"}]}`
	if sum := summaryOf(t, postJSON(t, srv, "?idScheme=CODE", body)); conflictsOf(sum)[0]["errorCode"] != "E7610" {
		t.Fatalf("before: %v", sum)
	}
	if err := srv.UpdateMetadata(func(m *Metadata) error {
		m.AddDataElement(DataElement{ID: "ChwFamPlan1", Code: "CHW_FAMILY_PLANNING", Name: "CHW family planning", ValueType: "INTEGER_ZERO_OR_POSITIVE"})
		m.DataSet("CHW_MONTHLY").DataElements = append(m.DataSet("CHW_MONTHLY").DataElements, "CHW_FAMILY_PLANNING")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got := counts(t, summaryOf(t, postJSON(t, srv, "?idScheme=CODE", body))); got != [4]int{1, 0, 0, 0} {
		t.Errorf("after: %v", got)
	}
	// an invalid update is refused and changes nothing
	if err := srv.UpdateMetadata(func(m *Metadata) error {
		m.AddDataElement(DataElement{ID: "bad", Name: "bad"})
		return nil
	}); err == nil || srv.Metadata().DataElement("bad") != nil {
		t.Errorf("invalid update: %v", err)
	}
	// Metadata() is a copy
	srv.Metadata().DataElement("EPI_BCG").Code = "CHANGED"
	if srv.Metadata().DataElement("EPI_BCG") == nil {
		t.Error("Metadata() returned the live object")
	}
}
