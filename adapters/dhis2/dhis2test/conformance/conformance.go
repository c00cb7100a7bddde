// Package conformance holds the conformance table shared by the DHIS2
// emulator and Tally: the DHIS2 and CHT fixtures of shared/conformance, each
// with the metadata it needs (embedded here) and the outcome DHIS2's own
// tests expect (shared/conformance/README.md §5–§7). The emulator's test
// runs every Scenario straight against dhis2test (Run); Tally runs the same
// table through its own ingest into an emulator and checks what the
// emulator received and stored.
//
// A Step's expectations come in two halves: the DHIS2 answer to the import
// (Counts, Status, Codes, CheckResponse) and the emulator's state afterwards
// (Stored, CheckStore). A runner that cannot see DHIS2's answer directly can
// still assert the second half.
package conformance

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tally-hmis/tally/adapters/dhis2/dhis2test"
)

//go:embed metadata/*.yaml
var metadataFS embed.FS

// Metadata files (README §4): M-DVS (2.42 setup), its 2.43 variant, M-ADX
// and M-CHT.
const (
	MetaDVS    = "m-dvs.yaml"
	MetaDVS243 = "m-dvs-243.yaml"
	MetaADX    = "m-adx.yaml"
	MetaCHT    = "m-cht.yaml"
)

// MetadataYAML returns the embedded metadata file name (one of the Meta*
// constants).
func MetadataYAML(name string) ([]byte, error) {
	b, err := metadataFS.ReadFile("metadata/" + name)
	if err != nil {
		return nil, fmt.Errorf("conformance: metadata %q: %w", name, err)
	}
	return b, nil
}

// Metadata parses the embedded metadata file name.
func Metadata(name string) (*dhis2test.Metadata, error) {
	b, err := MetadataYAML(name)
	if err != nil {
		return nil, err
	}
	m, err := dhis2test.ParseMetadata(b, "yaml")
	if err != nil {
		return nil, fmt.Errorf("conformance: metadata %s: %w", name, err)
	}
	return m, nil
}

// Now is the clock every scenario starts at: 2024-03-15 10:00 UTC. Runners
// advance it by a minute after each step (Clock.Advance).
var Now = time.Date(2024, 3, 15, 10, 0, 0, 0, time.UTC)

// Clock is a settable clock for dhis2test.WithClock.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock at Now.
func NewClock() *Clock { return &Clock{t: Now} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Passwords of the users the scenarios import as.
var passwords = map[string]string{"dvs": "Dvs-Pass1", "admin": "district"}

// Password returns the password of a scenario user.
func Password(user string) string { return passwords[user] }

// Counts are imported/updated/deleted/ignored (README §3); -1 leaves one
// unchecked.
type Counts [4]int

// Unchecked checks no count.
var Unchecked = Counts{-1, -1, -1, -1}

// Conflict is one conflict entry of an import summary.
type Conflict struct {
	Object    string         `json:"object"`
	Objects   map[string]any `json:"objects"`
	Value     string         `json:"value"`
	ErrorCode string         `json:"errorCode"`
	Property  string         `json:"property"`
	Indexes   []int          `json:"indexes"`
}

// Occurrences is how many values the entry stands for (its indexes, or 1).
func (c Conflict) Occurrences() int { return max(len(c.Indexes), 1) }

// Result is a DHIS2 import answer: a WebMessage's ImportSummary or a bare
// one.
type Result struct {
	HTTPStatus      int
	Status          string
	Description     string
	Counts          Counts
	Conflicts       []Conflict
	RejectedIndexes []int
	DataSetComplete string
	Raw             []byte
}

// Occurrences counts the values the conflicts with code stand for ("" = all).
func (r Result) Occurrences(code string) int {
	n := 0
	for _, c := range r.Conflicts {
		if code == "" || c.ErrorCode == code {
			n += c.Occurrences()
		}
	}
	return n
}

// ParseResult reads an import answer.
func ParseResult(status int, body []byte) (Result, error) {
	var wire struct {
		Response        json.RawMessage `json:"response"`
		ResponseType    string          `json:"responseType"`
		Status          string          `json:"status"`
		Description     string          `json:"description"`
		ImportCount     map[string]int  `json:"importCount"`
		Conflicts       []Conflict      `json:"conflicts"`
		RejectedIndexes []int           `json:"rejectedIndexes"`
		DataSetComplete any             `json:"dataSetComplete"`
	}
	if err := json.Unmarshal(body, &wire); err != nil {
		return Result{}, fmt.Errorf("conformance: HTTP %d: not JSON: %w", status, err)
	}
	if len(wire.Response) > 0 {
		if err := json.Unmarshal(wire.Response, &wire); err != nil {
			return Result{}, fmt.Errorf("conformance: HTTP %d: response: %w", status, err)
		}
	}
	if wire.ImportCount == nil {
		return Result{}, fmt.Errorf("conformance: HTTP %d: no importCount in %s", status, body)
	}
	ic := wire.ImportCount
	return Result{HTTPStatus: status, Status: wire.Status, Description: wire.Description,
		Counts:    Counts{ic["imported"], ic["updated"], ic["deleted"], ic["ignored"]},
		Conflicts: wire.Conflicts, RejectedIndexes: wire.RejectedIndexes,
		DataSetComplete: fmt.Sprint(wire.DataSetComplete), Raw: body}, nil
}

// Step imports one fixture and states the outcome.
type Step struct {
	// File is a path relative to shared/conformance, or a key of
	// Scenario.Inline.
	File  string
	Query string // starting with "?", or empty
	User  string // default: the scenario's user
	// The DHIS2 answer: counts (Unchecked parts are -1), status ("" =
	// unchecked), error codes of the conflict entries (nil = unchecked;
	// compared as a sorted multiset) and further checks.
	Counts        Counts
	Status        string
	Codes         []string
	CheckResponse func(t testing.TB, res Result)
	// The emulator afterwards: live values (-1 = unchecked) and further checks.
	Stored     int
	CheckStore func(t testing.TB, srv *dhis2test.Server)
}

// ContentType is the Content-Type the fixture is posted with.
func (st Step) ContentType() string {
	switch f := st.File; {
	case strings.HasSuffix(f, ".adx.xml"):
		return "application/adx+xml"
	case strings.HasSuffix(f, ".xml"):
		return "application/xml"
	case strings.HasSuffix(f, ".csv"):
		return "application/csv"
	}
	return "application/json"
}

// VerifyResponse asserts the DHIS2 answer.
func (st Step) VerifyResponse(t testing.TB, res Result) {
	t.Helper()
	for j, want := range st.Counts {
		if want >= 0 && res.Counts[j] != want {
			t.Errorf("%s%s: counts %v, want %v\n%s", st.File, st.Query, res.Counts, st.Counts, res.Raw)
			break
		}
	}
	if st.Status != "" && res.Status != st.Status {
		t.Errorf("%s%s: status %s, want %s\n%s", st.File, st.Query, res.Status, st.Status, res.Raw)
	}
	if st.Codes != nil {
		var got []string
		for _, c := range res.Conflicts {
			got = append(got, c.ErrorCode)
		}
		want := slices.Clone(st.Codes)
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s%s: conflict codes %v, want %v\n%s", st.File, st.Query, got, want, res.Raw)
		}
	}
	if st.CheckResponse != nil {
		st.CheckResponse(t, res)
	}
}

// VerifyStore asserts the emulator's state after the step.
func (st Step) VerifyStore(t testing.TB, srv *dhis2test.Server) {
	t.Helper()
	if st.Stored >= 0 && srv.Store().Len() != st.Stored {
		t.Errorf("%s%s: %d values stored, want %d", st.File, st.Query, srv.Store().Len(), st.Stored)
	}
	if st.CheckStore != nil {
		st.CheckStore(t, srv)
	}
}

// Scenario is a sequence of imports into a fresh emulator.
type Scenario struct {
	Name     string // unique, e.g. "dvs242/B/BUpdate"
	Metadata string // a Meta* file
	Version  string // the DHIS2 version to emulate
	User     string // the importing user (see Password)
	// Setup changes the emulator before the first step (metadata, seeds).
	Setup  func(t testing.TB, srv *dhis2test.Server)
	Steps  []Step
	Inline map[string]string // file name → body, for payloads written in the tests
}

// UserOf returns the user a step imports as.
func (sc Scenario) UserOf(st Step) string {
	if st.User != "" {
		return st.User
	}
	return sc.User
}

// Body returns a step's payload: the inline body, or the fixture under dir.
func (sc Scenario) Body(t testing.TB, dir string, st Step) []byte {
	t.Helper()
	if b, ok := sc.Inline[st.File]; ok {
		return []byte(b)
	}
	b, err := os.ReadFile(filepath.Join(dir, st.File))
	if err != nil {
		t.Fatalf("conformance fixture: %v", err)
	}
	return b
}

// NewServer starts an emulator for the scenario (its metadata, version and
// a Clock at Now), tied to t, and runs Setup. Extra options come last.
func (sc Scenario) NewServer(t testing.TB, opts ...dhis2test.Option) (*dhis2test.Server, *Clock) {
	t.Helper()
	m, err := Metadata(sc.Metadata)
	if err != nil {
		t.Fatal(err)
	}
	clock := NewClock()
	srv := dhis2test.NewServer(append([]dhis2test.Option{dhis2test.WithT(t), dhis2test.WithVersion(sc.Version),
		dhis2test.WithMetadata(m), dhis2test.WithClock(clock.Now)}, opts...)...)
	if sc.Setup != nil {
		sc.Setup(t, srv)
	}
	return srv, clock
}

// Run imports every step straight into a fresh emulator and verifies both
// halves of each outcome; the clock advances a minute after each step.
func Run(t *testing.T, sc Scenario) {
	t.Helper()
	dir := Dir(t)
	srv, clock := sc.NewServer(t)
	for _, st := range sc.Steps {
		res := Post(t, srv, st.Query, st.ContentType(), sc.UserOf(st), sc.Body(t, dir, st))
		st.VerifyResponse(t, res)
		st.VerifyStore(t, srv)
		clock.Advance(time.Minute)
	}
}

// Post sends a payload to srv's POST /api/dataValueSets as user.
func Post(t testing.TB, srv *dhis2test.Server, query, contentType, user string, body []byte) Result {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/api/dataValueSets"+query, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	req.SetBasicAuth(user, Password(user))
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("POST dataValueSets: %v", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	res, err := ParseResult(resp.StatusCode, raw)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// Dir locates shared/conformance beside the module root (found by walking
// up from the working directory to go.mod), so it works from any package
// directory; TALLY_CONFORMANCE_DIR overrides it. When the fixtures are
// missing the test is skipped, or fails when CI=true (CI has shared/ beside
// the clone, so a missing directory there is a broken setup, not an
// optional extra).
func Dir(t testing.TB) string {
	t.Helper()
	dir, err := locate()
	if err == nil {
		return dir
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("conformance fixtures: %v", err)
	}
	t.Skipf("conformance fixtures: %v", err)
	return ""
}

func locate() (string, error) {
	if d := os.Getenv("TALLY_CONFORMANCE_DIR"); d != "" {
		if fi, err := os.Stat(d); err != nil || !fi.IsDir() {
			return "", fmt.Errorf("TALLY_CONFORMANCE_DIR=%s is not a directory", d)
		}
		return d, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("working directory: %w", err)
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			c := filepath.Join(d, "..", "shared", "conformance")
			if fi, err := os.Stat(c); err == nil && fi.IsDir() {
				return c, nil
			}
			return "", fmt.Errorf("%s not found (module root %s)", c, d)
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.mod above %s", wd)
		}
	}
}
