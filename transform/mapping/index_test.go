package mapping

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/tally-hmis/tally/transform"
	"github.com/tally-hmis/tally/transform/metadata"
	"go.yaml.in/yaml/v3"
)

func TestIndexLookups(t *testing.T) {
	md := kalima(t)
	// Two org units with one name, to show that ambiguous names are refused.
	md.OrgUnits = append(md.OrgUnits, metadata.OrgUnit{Object: metadata.Object{ID: "KLdup000001", Code: "KL_DUP", Name: "North Facility 1"}})
	ix := NewIndex(md)
	tests := []struct {
		name, scheme, id string
		lookup           func(transform.IDScheme, string) (*metadata.Object, error)
		wantID, wantErr  string
	}{
		{"data element by uid", "UID", "BYQ0DVbpag1", de(ix), "BYQ0DVbpag1", ""},
		{"data element by code", "CODE", "EPI_BCG", de(ix), "BYQ0DVbpag1", ""},
		{"data element by name", "NAME", "BCG doses given", de(ix), "BYQ0DVbpag1", ""},
		{"empty scheme is uid", "", "BYQ0DVbpag1", de(ix), "BYQ0DVbpag1", ""},
		{"unknown code", "CODE", "EPI_X", de(ix), "", `no data element has code "EPI_X"`},
		{"org unit by attribute", "ATTRIBUTE:AttrChtPlce", "cht-place-n-f2", ou(ix), "DNRUQxA71p2", ""},
		{"unknown attribute", "ATTRIBUTE:Nope0000001", "x", ou(ix), "", `no org unit has attribute Nope0000001 value "x"`},
		{"ambiguous name", "NAME", "North Facility 1", ou(ix), "", `name "North Facility 1" names more than one org unit`},
		{"unsupported scheme", "ID", "1", ou(ix), "", "id scheme ID is not supported"},
		{"option combo by code", "CODE", "M_1TO4", coc(ix), "NcAKEIOUttY", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := tt.lookup(transform.IDScheme(tt.scheme), tt.id)
			switch {
			case tt.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("err = %v, want %q", err, tt.wantErr)
				}
			case err != nil:
				t.Error(err)
			case o.ID != tt.wantID:
				t.Errorf("found %s, want %s", o.ID, tt.wantID)
			}
		})
	}
}

func de(ix *Index) func(transform.IDScheme, string) (*metadata.Object, error) {
	return func(s transform.IDScheme, id string) (*metadata.Object, error) {
		o, err := ix.DataElement(s, id)
		if err != nil {
			return nil, err
		}
		return &o.Object, nil
	}
}

func ou(ix *Index) func(transform.IDScheme, string) (*metadata.Object, error) {
	return func(s transform.IDScheme, id string) (*metadata.Object, error) {
		o, err := ix.OrgUnit(s, id)
		if err != nil {
			return nil, err
		}
		return &o.Object, nil
	}
}

func coc(ix *Index) func(transform.IDScheme, string) (*metadata.Object, error) {
	return func(s transform.IDScheme, id string) (*metadata.Object, error) {
		o, err := ix.CategoryOptionCombo(s, id)
		if err != nil {
			return nil, err
		}
		return &o.Object, nil
	}
}

func TestIndexCombos(t *testing.T) {
	ix := NewIndex(kalima(t))
	if c := ix.ComboOf("sNdV40J599d", []string{"MlRdZQ9QsTX", "QA6TCvY4dhK"}); c == nil || c.Code != "M_LT1" {
		t.Errorf("ComboOf(M, LT1) = %v", c)
	}
	if c := ix.ComboOf("sNdV40J599d", []string{"QA6TCvY4dhK"}); c != nil {
		t.Errorf("ComboOf(M) = %v, want none", c)
	}
	if c := ix.ComboOf("NoCombo0001", []string{"QA6TCvY4dhK"}); c != nil {
		t.Errorf("ComboOf on an unknown combo = %v", c)
	}
	bcg, _ := ix.DataElement(transform.SchemeCode, "EPI_BCG")
	if dss := ix.DataSetsOf(bcg.ID); len(dss) != 1 || dss[0].Code != "EPI_MONTHLY" || !dss[0].HasElement(bcg.ID) {
		t.Errorf("DataSetsOf(EPI_BCG) = %v", dss)
	}
	if cc := ix.ElementCombo(bcg, nil); cc == nil || cc.Code != "SEX_AGE" || cc.IsDefault() {
		t.Errorf("ElementCombo = %v", cc)
	}
	gov, _ := ix.CategoryOptionCombo(transform.SchemeCode, "GOV")
	if !ix.InCombo(gov, "TCZWZYvRSZe") || ix.InCombo(gov, "sNdV40J599d") {
		t.Error("InCombo(GOV)")
	}
	if ix.Metadata() == nil {
		t.Error("no metadata")
	}
}

func TestIndexDataSetComboOverride(t *testing.T) {
	md := kalima(t)
	// EPI_MONTHLY collects EPI_BCG without disaggregation (a data set element override).
	for i := range md.DataSets {
		if md.DataSets[i].Code == "EPI_MONTHLY" {
			md.DataSets[i].DataSetElements[0].CategoryCombo = metadata.Ref{ID: metadata.DefaultCategoryComboUID}
		}
	}
	ix := NewIndex(md)
	bcg, _ := ix.DataElement(transform.SchemeCode, "EPI_BCG")
	ds, _ := ix.DataSet(transform.SchemeCode, "EPI_MONTHLY")
	if cc := ix.ElementCombo(bcg, ds); cc == nil || !cc.IsDefault() {
		t.Errorf("ElementCombo with override = %v", cc)
	}
	if cc := ix.ElementCombo(bcg, nil); cc == nil || cc.Code != "SEX_AGE" {
		t.Errorf("ElementCombo without data set = %v", cc)
	}
}

func TestMetadataRequestsCoverTheModel(t *testing.T) {
	keys := map[string]bool{}
	for _, r := range metadata.MetadataRequests() {
		keys[r.Resource] = true
		if !strings.HasPrefix(r.Fields, "id,code,name,attributeValues[value,attribute[id]]") {
			t.Errorf("%s fields = %s", r.Resource, r.Fields)
		}
	}
	for _, k := range []string{"dataElements", "categoryCombos", "categories", "categoryOptions", "categoryOptionCombos", "dataSets", "organisationUnits"} {
		if !keys[k] {
			t.Errorf("no request for %s", k)
		}
	}
}

// The fixture mirrors the emulator's bundled Kalima metadata, so that tests here and the
// mediator's integration tests against the emulator agree on every UID.
func TestFixtureMatchesEmulatorSample(t *testing.T) {
	data, err := os.ReadFile("../../adapters/dhis2/dhis2test/sample/kalima.yaml")
	if err != nil {
		t.Skip("emulator sample not available:", err)
	}
	var sample map[string][]struct {
		ID   string `yaml:"id"`
		Code string `yaml:"code"`
	}
	if err := yaml.Unmarshal(data, &sample); err != nil {
		t.Fatal(err)
	}
	md := kalima(t)
	ours := map[string][]metadata.Object{}
	add := func(key string, o metadata.Object) { ours[key] = append(ours[key], o) }
	for _, o := range md.DataElements {
		add("dataElements", o.Object)
	}
	for _, o := range md.CategoryOptionCombos {
		add("categoryOptionCombos", o.Object)
	}
	for _, o := range md.CategoryCombos {
		add("categoryCombos", o.Object)
	}
	for _, o := range md.Categories {
		add("categories", o.Object)
	}
	for _, o := range md.CategoryOptions {
		add("categoryOptions", o.Object)
	}
	for _, o := range md.DataSets {
		add("dataSets", o.Object)
	}
	for _, o := range md.OrgUnits {
		add("organisationUnits", o.Object)
	}
	for key, objs := range ours {
		if len(sample[key]) == 0 {
			t.Errorf("the sample has no %s", key)
		}
		for _, s := range sample[key] {
			i := slices.IndexFunc(objs, func(o metadata.Object) bool { return o.Code == s.Code })
			if i < 0 || objs[i].ID != s.ID {
				t.Errorf("%s %s: the sample's uid is %s, the fixture's is %v", key, s.Code, s.ID, objs)
			}
		}
	}
}

// Data sets' org units decode from DHIS2's fields=organisationUnits[id] (a data set's
// organisationUnits collection is its assignments: DHIS2 web API docs, "for a dataSet ...
// give me only the organisationUnits collection (assignments)", dhis2-docbook-docs r1100;
// OrganisationUnit carries "level" as a JSON property, dhis2 r9963); a snapshot read
// without the field says nothing, which survives being stored and read again.
func TestIndexAssigned(t *testing.T) {
	md := kalima(t)
	md.DataSets = append(md.DataSets, metadata.DataSet{Object: metadata.Object{ID: "DsUnknown01"}}, metadata.DataSet{Object: metadata.Object{ID: "DsNone00001"}, OrganisationUnits: []metadata.Ref{}})
	data, err := json.Marshal(md)
	if err != nil {
		t.Fatal(err)
	}
	var again metadata.Metadata
	if err := json.Unmarshal(data, &again); err != nil {
		t.Fatal(err)
	}
	ix := NewIndex(&again)
	ds := func(code string) *metadata.DataSet {
		d, err := ix.DataSet(transform.SchemeUID, code)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	for _, tt := range []struct {
		ds, ou          string
		assigned, known bool
	}{
		{"wu1JOSNta0P", "muaptt0Azn0", true, true},   // CHW_MONTHLY, KL_N_F1
		{"wu1JOSNta0P", "xvboSRt5Mh3", false, true},  // CHW_MONTHLY, KL_NORTH
		{"DsUnknown01", "muaptt0Azn0", false, false}, // read without organisationUnits
		{"DsNone00001", "muaptt0Azn0", false, true},  // assigned to none
	} {
		if a, k := ix.Assigned(ds(tt.ds), tt.ou); a != tt.assigned || k != tt.known {
			t.Errorf("Assigned(%s, %s) = %v, %v", tt.ds, tt.ou, a, k)
		}
	}
	if ou, _ := ix.OrgUnit(transform.SchemeCode, "KL_NORTH"); ou.Level != 2 || ou.Path != "/M0XvqZjxTW3/xvboSRt5Mh3" {
		t.Errorf("KL_NORTH = %+v", ou)
	}
}
