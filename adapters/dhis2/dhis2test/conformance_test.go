package dhis2test

import (
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Conformance suite: the DHIS2 test fixtures in shared/conformance/{dvs,adx}
// imported over HTTP with the outcomes conformance README §5 and §6 give.
// Metadata: testdata/m-dvs.yaml (§4.2), m-dvs-243.yaml (§4.2 "2.43+
// variant"), m-adx.yaml (§4.1), transcribed from the README.

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// step imports one fixture and checks the outcome. Counts are
// imported/updated/deleted/ignored (README §3); -1 leaves a count unchecked.
type step struct {
	file   string // relative to shared/conformance
	query  string
	user   string // default: the scenario user
	counts [4]int
	status string // "" = unchecked
	stored int    // live values afterwards; -1 = unchecked
	check  func(t *testing.T, srv *Server, sum map[string]any)
}

type scenario struct {
	name   string
	meta   string // testdata file
	ver    string
	user   string
	setup  func(t *testing.T, srv *Server)
	steps  []step
	clock  *testClock
	inline map[string]string // file name → body for inline payloads
}

var unchecked = [4]int{-1, -1, -1, -1}

func contentTypeFor(file string) string {
	switch {
	case strings.HasSuffix(file, ".adx.xml"):
		return "application/adx+xml"
	case strings.HasSuffix(file, ".xml"):
		return "application/xml"
	case strings.HasSuffix(file, ".csv"):
		return "application/csv"
	}
	return "application/json"
}

var userPasswords = map[string]string{"dvs": "Dvs-Pass1", "admin": "district"}

func runScenario(t *testing.T, sc scenario) {
	t.Helper()
	meta, err := LoadMetadata(filepath.Join("testdata", sc.meta))
	if err != nil {
		t.Fatal(err)
	}
	clock := sc.clock
	if clock == nil {
		clock = &testClock{t: fixedNow}
	}
	srv := NewServer(WithT(t), WithVersion(sc.ver), WithMetadata(meta), WithClock(clock.now))
	if sc.setup != nil {
		sc.setup(t, srv)
	}
	for i, st := range sc.steps {
		body, ok := sc.inline[st.file]
		if !ok {
			body = string(readFixture(t, st.file))
		}
		user := st.user
		if user == "" {
			user = sc.user
		}
		r := do(t, srv, http.MethodPost, "/api/dataValueSets"+st.query, contentTypeFor(st.file), []byte(body),
			withBasic(user, userPasswords[user]))
		sum := summaryOf(t, r)
		if st.counts != unchecked {
			got := counts(t, sum)
			for j := range 4 {
				if st.counts[j] >= 0 && got[j] != st.counts[j] {
					t.Errorf("step %d (%s%s): counts %v, want %v\n%s", i, st.file, st.query, got, st.counts, r.raw)
					break
				}
			}
		}
		if st.status != "" && sum["status"] != st.status {
			t.Errorf("step %d (%s): status %v, want %s\n%s", i, st.file, sum["status"], st.status, r.raw)
		}
		if st.stored >= 0 && srv.Store().Len() != st.stored {
			t.Errorf("step %d (%s): %d values stored, want %d", i, st.file, srv.Store().Len(), st.stored)
		}
		if st.check != nil {
			st.check(t, srv, sum)
		}
		clock.advance(time.Minute)
	}
}

func storedValues(srv *Server) []string {
	var out []string
	for _, v := range srv.Store().Values() {
		out = append(out, v.Value)
	}
	slices.Sort(out)
	return out
}

func occurrences(sum map[string]any, code string) int {
	n := 0
	for _, c := range conflictsOf(sum) {
		if code == "" || c["errorCode"] == code {
			if idx, ok := c["indexes"]; ok {
				n += len(idx.([]any))
			} else {
				n++
			}
		}
	}
	return n
}

func expectConflicts(n int) func(*testing.T, *Server, map[string]any) {
	return func(t *testing.T, _ *Server, sum map[string]any) {
		t.Helper()
		if got := len(conflictsOf(sum)); got != n {
			t.Errorf("%d conflict entries, want %d: %v", got, n, sum["conflicts"])
		}
	}
}

func expectStoredKey(de, pe, ou, coc, aoc string) func(*testing.T, *Server, map[string]any) {
	return func(t *testing.T, srv *Server, _ map[string]any) {
		t.Helper()
		if _, ok := srv.Lookup(de, pe, ou, coc, aoc); !ok {
			t.Errorf("value %s/%s/%s/%s/%s not stored", de, pe, ou, coc, aoc)
		}
	}
}

func dvs(file string) string { return "dvs/" + file }

// TestConformanceDVS242 covers conformance README §6.1 (2.42.5.2 engine).
func TestConformanceDVS242(t *testing.T) {
	conformanceDir(t)
	j := step{file: dvs("dataValueSetJ.json"), counts: [4]int{1, 0, 0, -1}, status: "SUCCESS", stored: 1}
	a := step{file: dvs("dataValueSetA.xml"), counts: [4]int{3, 0, 0, -1}, status: "SUCCESS", stored: 3}
	b := step{file: dvs("dataValueSetB.xml"), counts: [4]int{12, 0, 0, -1}, status: "SUCCESS", stored: 12}
	bDeleted := step{file: dvs("dataValueSetBDeleted.xml"), counts: [4]int{12, 0, 0, -1}, status: "SUCCESS", stored: 8}
	del := func(file string) step {
		return step{file: dvs(file), query: "?importStrategy=DELETE", counts: [4]int{0, 0, 1, -1}, stored: 0}
	}
	seedRegistration := func(t *testing.T, srv *Server) {
		srv.Store().PutRegistration(Registration{DataSet: "pBOMPrpg1QX", Period: "201201", OrgUnit: "DiszpKrYNg8",
			AttributeOptionCombo: DefaultCategoryOptionComboUID, Date: "2012-01-09", Completed: true})
	}
	readOnly := func(t *testing.T, srv *Server) {
		if err := srv.UpdateMetadata(func(m *Metadata) error {
			m.User("dvs").ReadOnlyDataSets = []string{"pBOMPrpg1QX"}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	optionDates := func(t *testing.T, srv *Server) {
		if err := srv.UpdateMetadata(func(m *Metadata) error {
			for _, o := range m.CategoryOptions {
				if o.ID == "CatOptionAa" {
					o.StartDate, o.EndDate = "2012-02-01", "2012-02-29"
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	optionOrgUnits := func(t *testing.T, srv *Server) {
		if err := srv.UpdateMetadata(func(m *Metadata) error {
			for _, o := range m.CategoryOptions {
				if o.ID == "CatOptionAa" {
					o.OrgUnits = []string{"OU_A", "OU_B"}
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	clockForDates := &testClock{t: fixedNow}
	month := func(n int) string {
		p, _ := periodContaining("Monthly", fixedNow)
		q, _ := shiftPeriod(p, n)
		return q.ID
	}
	allowsPeriods := `<dataValueSet xmlns="http://dhis2.org/schema/dxf/2.0" idScheme="code" dataSet="DS_A" orgUnit="OU_A">
  <dataValue dataElement="DE_A" period="` + month(4) + `" value="1"/>
  <dataValue dataElement="DE_A" period="` + month(1) + `" value="2"/>
  <dataValue dataElement="DE_A" period="` + month(-1) + `" value="3"/>
  <dataValue dataElement="DE_A" period="` + month(-4) + `" value="4"/>
  <dataValue dataElement="DE_A" period="` + month(6) + `" value="5"/>
</dataValueSet>`
	scenarios := []scenario{
		{name: "J", steps: []step{j}},
		{name: "J/DELETE", steps: []step{j, {file: dvs("dataValueSetJ.json"), query: "?importStrategy=DELETE", counts: [4]int{0, 0, 1, -1}, status: "SUCCESS", stored: 0}}},
		{name: "J/DeleteNoValue", steps: []step{j, del("dataValueSetJDeleteNoValue.json")}},
		{name: "J/DeleteNewValue", steps: []step{j, del("dataValueSetJDeleteNewValue.json")}},
		{name: "J/DeleteZeroValue", steps: []step{j, {file: dvs("dataValueSetJDeleteZeroValue.json"), counts: [4]int{0, 0, 1, -1}, stored: 0}}},
		{name: "A", setup: seedRegistration, steps: []step{{file: a.file, counts: a.counts, status: "SUCCESS", stored: 3,
			check: func(t *testing.T, srv *Server, _ map[string]any) {
				if got := storedValues(srv); !slices.Equal(got, []string{"10001", "10002", "10003"}) {
					t.Errorf("values %v", got)
				}
				for _, v := range srv.Store().Values() {
					for _, w := range srv.Store().History(v.Key) {
						if w.Audited {
							t.Errorf("audit row for a create: %+v", w)
						}
					}
				}
				if regs := srv.Store().Registrations(); len(regs) != 1 || regs[0].Date != "2012-01-09" {
					t.Errorf("registrations %+v", regs)
				}
			}}}},
		{name: "A/read-only data set", setup: readOnly, steps: []step{{file: a.file, counts: unchecked, status: "ERROR", stored: 0}}},
		{name: "A/A", steps: []step{a, {file: a.file, counts: [4]int{0, 0, 0, 3}, status: "SUCCESS", stored: 3}}},
		{name: "A/ADeleted", steps: []step{a, {file: dvs("dataValueSetADeleted.xml"), counts: [4]int{0, 0, 3, -1}, status: "SUCCESS", stored: 0}}},
		{name: "A/AUpdate", steps: []step{a, {file: dvs("dataValueSetAUpdate.xml"), counts: [4]int{0, 3, 0, -1}, stored: 3,
			check: func(t *testing.T, srv *Server, _ map[string]any) { expectAudits(t, srv, OpUpdate, 1) }}}},
		{name: "A/AUpdate skipAudit", steps: []step{a, {file: dvs("dataValueSetAUpdate.xml"), query: "?skipAudit=true", counts: [4]int{0, 3, 0, -1}, stored: 3,
			check: func(t *testing.T, srv *Server, _ map[string]any) { expectAudits(t, srv, OpUpdate, 0) }}}},
		{name: "ACode", steps: []step{{file: dvs("dataValueSetACode.xml"), counts: [4]int{3, 0, 0, -1}, stored: 3,
			check: func(t *testing.T, srv *Server, sum map[string]any) {
				for _, de := range []string{"DE_A", "DE_B", "DE_C"} {
					expectStoredKey(de, "201201", "OU_A", "", "")(t, srv, sum)
				}
				if sum["dataSetComplete"] != "2012-01-09" {
					t.Errorf("dataSetComplete %v", sum["dataSetComplete"])
				}
			}}}},
		{name: "ACatCombo", steps: []step{{file: dvs("dataValueSetACatCombo.xml"), counts: [4]int{3, 0, 0, -1}, status: "SUCCESS", stored: 3}}},
		{name: "ACatCombo/read-only data set", setup: readOnly, steps: []step{{file: dvs("dataValueSetACatCombo.xml"), counts: unchecked, status: "ERROR"}}},
		{name: "ANull", steps: []step{{file: dvs("dataValueSetANull.xml"), counts: [4]int{1, 0, 0, 2}, status: "WARNING", stored: 1, check: expectConflicts(2)}}},
		{name: "B", steps: []step{b}},
		{name: "B dryRun", steps: []step{{file: b.file, query: "?dryRun=true", counts: [4]int{12, 0, 0, -1}, stored: 0}}},
		{name: "B UPDATES", steps: []step{{file: b.file, query: "?importStrategy=UPDATES", counts: [4]int{0, 0, 0, 12}, stored: 0}}},
		{name: "B/B DELETE", steps: []step{b, {file: b.file, query: "?importStrategy=DELETE", counts: [4]int{0, 0, 12, -1}, stored: 0}}},
		{name: "B/BUpdate", steps: []step{b, {file: dvs("dataValueSetBUpdate.xml"), counts: [4]int{2, 4, 0, -1}, status: "SUCCESS", stored: 14}}},
		{name: "BDeleted", steps: []step{bDeleted}},
		{name: "B/BDeleted", steps: []step{b, {file: bDeleted.file, counts: [4]int{0, 0, 4, 8}, status: "SUCCESS", stored: 8}}},
		{name: "BDeleted/B", steps: []step{bDeleted, {file: b.file, counts: [4]int{4, 0, 0, 8}, status: "SUCCESS", stored: 12}}},
		{name: "BDeleted/BNew", steps: []step{bDeleted, {file: dvs("dataValueSetBNew.xml"), counts: [4]int{8, 0, 0, 4}, status: "SUCCESS", stored: 16}}},
		{name: "B/BNewDeleted", steps: []step{b, {file: dvs("dataValueSetBNewDeleted.xml"), counts: [4]int{2, 0, 4, 6}, status: "SUCCESS", stored: 10}}},
		{name: "CreateDate", clock: clockForDates, steps: []step{
			{file: dvs("dataValueSetCreateDate.json"), counts: [4]int{1, 0, 0, -1}, stored: 1, check: func(t *testing.T, srv *Server, _ map[string]any) {
				v, _ := srv.Lookup("DE_A", "201201", "OU_A", "", "")
				if v.Value != "20" || !v.Created.Equal(fixedNow) || !v.LastUpdated.Equal(fixedNow) {
					t.Errorf("stored %+v (created/lastUpdated must be the server's time)", v)
				}
			}},
			{file: dvs("dataValueSetCreateDateUpdated.json"), counts: [4]int{0, 1, 0, -1}, stored: 1, check: func(t *testing.T, srv *Server, _ map[string]any) {
				v, _ := srv.Lookup("DE_A", "201201", "OU_A", "", "")
				if v.Value != "22" || v.Comment != "new comment" || !v.Created.Equal(fixedNow) || v.LastUpdated.Equal(v.Created) {
					t.Errorf("stored %+v", v)
				}
			}}}},
		{name: "BCode", steps: []step{{file: dvs("dataValueSetBCode.xml"), query: "?idScheme=CODE&dataElementIdScheme=CODE&orgUnitIdScheme=CODE", counts: [4]int{12, 0, 0, -1}, stored: 12}}},
		{name: "BAttribute", steps: []step{{file: dvs("dataValueSetBAttribute.xml"),
			query: "?idScheme=ATTRIBUTE:uh6H2ff562G&dataElementIdScheme=ATTRIBUTE:uh6H2ff562G&orgUnitIdScheme=ATTRIBUTE:uh6H2ff562G", counts: [4]int{12, 0, 0, -1}, stored: 12}}},
		{name: "BAttributeIdScheme", steps: []step{{file: dvs("dataValueSetBAttributeIdScheme.xml"), counts: [4]int{12, 0, 0, -1}, stored: 12}}},
		{name: "B.csv", steps: []step{{file: dvs("dataValueSetB.csv"), counts: [4]int{12, 0, 0, -1}, stored: 12}}},
		{name: "WithDataSetHeader.csv", steps: []step{{file: dvs("dataValueSetWithDataSetHeader.csv"), query: "?dataSet=pBOMPrpg1QX", counts: [4]int{3, 0, 0, -1}, stored: 3}}},
		{name: "BNoHeader.csv", steps: []step{{file: dvs("dataValueSetBNoHeader.csv"), query: "?firstRowIsHeader=false", counts: [4]int{12, 0, 0, -1}, stored: 12}}},
		{name: "BooleanTest.csv", steps: []step{{file: dvs("dataValueSetBooleanTest.csv"), counts: unchecked, stored: -1,
			check: func(t *testing.T, srv *Server, sum map[string]any) {
				if n := occurrences(sum, "E7619"); n != 4 || occurrences(sum, "") != 4 {
					t.Errorf("E7619 occurrences %d of %d", n, occurrences(sum, ""))
				}
				cs := conflictsOf(sum)
				if len(cs) != 2 || !slices.Equal(intsOf(cs[0]["indexes"]), []int{10, 11}) || !slices.Equal(intsOf(cs[1]["indexes"]), []int{16, 17}) {
					t.Errorf("conflicts %v", cs)
				}
				for _, v := range storedValues(srv) {
					if v != "true" && v != "false" {
						t.Errorf("stored %q", v)
					}
				}
			}}}},
		{name: "C", steps: []step{{file: dvs("dataValueSetC.xml"), counts: [4]int{3, 0, 0, -1}, stored: 3}}},
		{name: "CCode", steps: []step{{file: dvs("dataValueSetCCode.xml"), query: "?categoryOptionComboIdScheme=CODE", counts: [4]int{3, 0, 0, -1}, stored: 3}}},
		{name: "D", steps: []step{{file: dvs("dataValueSetD.xml"), counts: [4]int{3, 0, 0, -1}, stored: 3,
			check: func(t *testing.T, srv *Server, sum map[string]any) {
				for _, de := range []string{"DE_A", "DE_B", "DE_C"} {
					expectStoredKey(de, "201201", "OU_A", "", "kjuiHgy67hg")(t, srv, sum)
				}
			}}}},
		// README: "WARNING, 2 conflicts": the two OU_C values merge into one
		// E7617 entry (same code and objects), and the header completeDate
		// without a header orgUnit adds "Must be provided to complete data set".
		{name: "E", steps: []step{{file: dvs("dataValueSetE.xml"), counts: unchecked, status: "WARNING", stored: 1,
			check: func(t *testing.T, srv *Server, sum map[string]any) {
				expectConflicts(2)(t, srv, sum)
				if n := occurrences(sum, "E7617"); n != 2 {
					t.Errorf("E7617 occurrences %d, want 2: %v", n, sum["conflicts"])
				}
				expectStoredKey("DE_A", "201201", "OU_A", "", "kjuiHgy67hg")(t, srv, sum)
			}}}},
		{name: "F", steps: []step{{file: dvs("dataValueSetF.xml"), counts: [4]int{0, -1, -1, -1}, status: "ERROR", stored: 0,
			check: func(t *testing.T, _ *Server, sum map[string]any) {
				if cs := conflictsOf(sum); len(cs) != 1 || cs[0]["errorCode"] != "E7604" {
					t.Errorf("conflicts %v", cs)
				}
			}}}},
		{name: "G", steps: []step{{file: dvs("dataValueSetG.xml"), counts: [4]int{1, 0, 0, 3}, status: "WARNING", stored: 1,
			check: func(t *testing.T, srv *Server, sum map[string]any) {
				expectConflicts(2)(t, srv, sum)
				if occurrences(sum, "E7610") != 2 || occurrences(sum, "E7612") != 1 {
					t.Errorf("conflicts %v", sum["conflicts"])
				}
			}}}},
		{name: "H/option dates", setup: optionDates, steps: []step{{file: dvs("dataValueSetH.xml"), counts: [4]int{1, 0, 0, 2}, status: "WARNING", stored: 1,
			check: func(t *testing.T, srv *Server, sum map[string]any) {
				expectConflicts(2)(t, srv, sum)
				expectStoredKey("DE_B", "201202", "OU_B", "", "kjuiHgy67hg")(t, srv, sum)
			}}}},
		{name: "H/option org units", setup: optionOrgUnits, steps: []step{{file: dvs("dataValueSetH.xml"), counts: [4]int{2, 0, 0, 1}, status: "WARNING", stored: 2,
			check: func(t *testing.T, srv *Server, sum map[string]any) {
				expectConflicts(1)(t, srv, sum)
				expectStoredKey("DE_A", "201201", "OU_A", "", "kjuiHgy67hg")(t, srv, sum)
				expectStoredKey("DE_B", "201202", "OU_B", "", "kjuiHgy67hg")(t, srv, sum)
			}}}},
		{name: "Invalid", steps: []step{{file: dvs("dataValueSetInvalid.xml"), counts: [4]int{2, 0, 0, -1}, status: "WARNING", stored: 2, check: expectConflicts(1)}}},
		{name: "NonStrict strictPeriods", steps: []step{{file: dvs("dataValueSetNonStrict.xml"), query: "?strictPeriods=true", counts: [4]int{1, 0, 0, 2}, status: "WARNING", check: expectConflicts(2), stored: -1}}},
		{name: "NonStrict strictCOC", steps: []step{{file: dvs("dataValueSetNonStrict.xml"), query: "?strictCategoryOptionCombos=true", counts: [4]int{2, 0, 0, 1}, status: "WARNING", check: expectConflicts(1), stored: -1}}},
		{name: "NonStrict strictAOC", steps: []step{{file: dvs("dataValueSetNonStrict.xml"), query: "?strictAttributeOptionCombos=true", counts: [4]int{2, 0, 0, 1}, status: "WARNING", check: expectConflicts(1), stored: -1}}},
		{name: "NonStrict requireCOC", steps: []step{{file: dvs("dataValueSetNonStrict.xml"), query: "?requireCategoryOptionCombo=true", counts: [4]int{1, 0, 0, 2}, status: "WARNING", stored: -1,
			check: func(t *testing.T, _ *Server, sum map[string]any) {
				if cs := conflictsOf(sum); len(cs) != 1 || !slices.Equal(intsOf(cs[0]["indexes"]), []int{1, 2}) || cs[0]["errorCode"] != "E7630" {
					t.Errorf("conflicts %v", cs)
				}
			}}}},
		{name: "NonStrict requireAOC", steps: []step{{file: dvs("dataValueSetNonStrict.xml"), query: "?requireAttributeOptionCombo=true", counts: [4]int{1, 0, 0, 2}, status: "WARNING", stored: -1,
			check: func(t *testing.T, _ *Server, sum map[string]any) {
				if cs := conflictsOf(sum); len(cs) != 1 || !slices.Equal(intsOf(cs[0]["indexes"]), []int{0, 2}) || cs[0]["errorCode"] != "E7631" {
					t.Errorf("conflicts %v", cs)
				}
			}}}},
		{name: "NonStrict strictOU", steps: []step{{file: dvs("dataValueSetNonStrict.xml"), query: "?strictOrganisationUnits=true", counts: [4]int{2, 0, 0, 1}, status: "WARNING", check: expectConflicts(1), stored: -1}}},
		// README §6.3 inline payloads
		{name: "NewPeriods", inline: map[string]string{"inline.xml": `<dataValueSet xmlns="http://dhis2.org/schema/dxf/2.0" idScheme="code" dataSet="DS_A" orgUnit="OU_A">
  <dataValue dataElement="DE_A" period="200006" value="10001"/>
  <dataValue dataElement="DE_B" period="200006" value="10002"/>
  <dataValue dataElement="DE_C" period="200007" value="10003"/>
  <dataValue dataElement="DE_D" period="200007" value="10004"/>
  <dataValue dataElement="DE_D" period="200008" value="10005"/>
</dataValueSet>`}, steps: []step{{file: "inline.xml", counts: [4]int{5, 0, 0, -1}, status: "SUCCESS", stored: 5}}},
		{name: "DataSetAllowsPeriods", inline: map[string]string{"inline.xml": allowsPeriods},
			setup: func(t *testing.T, srv *Server) {
				if err := srv.UpdateMetadata(func(m *Metadata) error {
					m.DataSet("DS_A").ExpiryDays, m.DataSet("DS_A").OpenFuturePeriods = 62, 2
					return nil
				}); err != nil {
					t.Fatal(err)
				}
			},
			steps: []step{{file: "inline.xml", counts: [4]int{2, 0, 0, 3}, status: "WARNING", stored: 2,
				check: func(t *testing.T, srv *Server, sum map[string]any) {
					expectConflicts(3)(t, srv, sum)
					expectStoredKey("DE_A", month(1), "OU_A", "", "")(t, srv, sum)
					expectStoredKey("DE_A", month(-1), "OU_A", "", "")(t, srv, sum)
				}}}},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			sc.meta, sc.ver, sc.user = "m-dvs.yaml", "2.42", "dvs"
			runScenario(t, sc)
		})
	}
}

func expectAudits(t *testing.T, srv *Server, op string, want int) {
	t.Helper()
	for _, v := range srv.Store().Values() {
		n := 0
		for _, w := range srv.Store().History(v.Key) {
			if w.Audited && w.Operation == op {
				n++
			}
		}
		if n != want {
			t.Errorf("%v: %d audited %s writes, want %d", v.Key, n, op, want)
		}
	}
}
