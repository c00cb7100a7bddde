package dhis2

import (
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"math/rand/v2"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/tally-hmis/tally/transform"
)

// TestImportEras replays each era's answer and checks what the result says.
func TestImportEras(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		body       string
		serverVer  string // answered by /system/info first, when set
		apiVersion string
		wantEra    Era
		wantStatus ImportStatus
		wantCounts ImportCount
		rejected   []int
		known      bool
		check      func(t *testing.T, r *ImportResult)
	}{
		{
			name: "A 2.40 WebMessage 409 WARNING", status: 409, body: bodyA,
			wantEra: Era238, wantStatus: StatusWarning, wantCounts: ImportCount{Imported: 2, Ignored: 1},
			rejected: []int{2}, known: true,
			check: func(t *testing.T, r *ImportResult) {
				want := Conflict{ErrorCode: "E7610", Object: "XXXXXXXXXXX", Objects: map[string]string{"dataElement": "XXXXXXXXXXX"},
					Property: "dataElement", Value: "Data element not found or not accessible: `XXXXXXXXXXX`", Indexes: []int{2}}
				if len(r.Conflicts) != 1 || !reflect.DeepEqual(r.Conflicts[0], want) {
					t.Errorf("conflicts = %+v, want [%+v]", r.Conflicts, want)
				}
				if r.Description != "Import process completed successfully" || r.DataSetComplete != "false" {
					t.Errorf("description %q, dataSetComplete %q", r.Description, r.DataSetComplete)
				}
			},
		},
		{
			name: "B 2.36 bare 200 WARNING without indexes", status: 200, body: bodyB236,
			wantEra: Era236, wantStatus: StatusWarning, wantCounts: ImportCount{Imported: 2, Ignored: 1},
			rejected: nil, known: false,
			check: func(t *testing.T, r *ImportResult) {
				c := r.Conflicts[0]
				if c.Object != "XXXXXXXXXXX" || c.Value != "Data element not found or not accessible" || c.ErrorCode != "" || c.Indexes != nil {
					t.Errorf("conflict = %+v", c)
				}
			},
		},
		{
			name: "B 2.37 bare 200 WARNING with indexes", status: 200, body: bodyB237,
			wantEra: Era237, wantStatus: StatusWarning, wantCounts: ImportCount{Imported: 1, Ignored: 2},
			rejected: []int{0, 2}, known: true,
		},
		{
			name: "D 2.43 all accepted counted as updated", status: 200, body: bodyD,
			wantEra: Era243, wantStatus: StatusSuccess, wantCounts: ImportCount{Updated: 3},
			rejected: nil, known: true,
			check: func(t *testing.T, r *ImportResult) {
				if r.Counts.Written() != 3 {
					t.Errorf("Written = %d, want 3", r.Counts.Written())
				}
			},
		},
		{
			name: "2.43 WARNING is HTTP 200 with objects.args", status: 200, body: body243Warning,
			wantEra: Era243, wantStatus: StatusWarning, wantCounts: ImportCount{Updated: 2, Ignored: 1},
			rejected: []int{2}, known: true,
			check: func(t *testing.T, r *ImportResult) {
				c := r.Conflicts[0]
				if c.ErrorCode != "E8103" || c.Objects["args"] != "2-XXXXXXXXXXX" || c.Object != "" || c.Property != "" {
					t.Errorf("conflict = %+v", c)
				}
			},
		},
		{
			name: "2.43 group conflict without indexes", status: 200, body: body243GroupError,
			wantEra: Era243, wantStatus: StatusWarning, wantCounts: ImportCount{Updated: 1, Ignored: 2},
			rejected: nil, known: false,
		},
		{
			name: "2.41 rejectedIndexes settle an index-less conflict", status: 409, body: body241,
			wantEra: Era238, wantStatus: StatusWarning, wantCounts: ImportCount{Imported: 2, Ignored: 1},
			rejected: []int{2}, known: true,
		},
		{
			name: "2.38 clean success", status: 200, body: body238Success,
			wantEra: Era238, wantStatus: StatusSuccess, wantCounts: ImportCount{Imported: 3}, known: true,
		},
		{
			name: "WebMessage success without era detail", status: 200, body: bodyWMSuccessPlain,
			wantEra: EraWebMessage, wantStatus: StatusSuccess, wantCounts: ImportCount{Ignored: 3}, known: true,
		},
		{
			name: "WebMessage success refined by system info 2.43", status: 200, body: bodyWMSuccessPlain, serverVer: "2.43.1",
			wantEra: Era243, wantStatus: StatusSuccess, wantCounts: ImportCount{Ignored: 3}, known: true,
		},
		{
			name: "bare success without era detail", status: 200, body: bodyBareSuccess,
			wantEra: EraBare, wantStatus: StatusSuccess, wantCounts: ImportCount{Imported: 3}, known: true,
		},
		{
			name: "bare success on /api/37/ of a 2.40 server", status: 200, body: bodyBareSuccess, serverVer: "2.40.3", apiVersion: "37",
			wantEra: Era237, wantStatus: StatusSuccess, wantCounts: ImportCount{Imported: 3}, known: true,
		},
		{
			name: "bare success from a 2.36 server", status: 200, body: bodyBareSuccess, serverVer: "2.36.12.1",
			wantEra: Era236, wantStatus: StatusSuccess, wantCounts: ImportCount{Imported: 3}, known: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			prefix := "/api"
			if tt.apiVersion != "" {
				prefix += "/" + tt.apiVersion
			}
			f.handle("POST "+prefix+"/dataValueSets", reply(tt.status, jsonCT, tt.body))
			c := newTestClient(t, f.url(), func(cfg *Config) { cfg.APIVersion = tt.apiVersion })
			if tt.serverVer != "" {
				f.handle("GET "+prefix+"/system/info", reply(200, jsonCT, `{"version":"`+tt.serverVer+`","revision":"abc"}`))
				if _, err := c.SystemInfo(context.Background()); err != nil {
					t.Fatalf("SystemInfo: %v", err)
				}
			}
			r, err := c.ImportDataValues(context.Background(), jsonPayload(), ImportOptions{})
			if err != nil {
				t.Fatalf("ImportDataValues: %v", err)
			}
			if r.Era != tt.wantEra {
				t.Errorf("Era = %v, want %v", r.Era, tt.wantEra)
			}
			if r.Status != tt.wantStatus {
				t.Errorf("Status = %q, want %q", r.Status, tt.wantStatus)
			}
			if r.HTTPStatus != tt.status {
				t.Errorf("HTTPStatus = %d, want %d", r.HTTPStatus, tt.status)
			}
			if r.Counts != tt.wantCounts {
				t.Errorf("Counts = %+v, want %+v", r.Counts, tt.wantCounts)
			}
			if !reflect.DeepEqual(r.Rejected, tt.rejected) {
				t.Errorf("Rejected = %v, want %v", r.Rejected, tt.rejected)
			}
			if r.IndexesKnown != tt.known {
				t.Errorf("IndexesKnown = %v, want %v", r.IndexesKnown, tt.known)
			}
			if len(r.Raw) == 0 || r.RawTruncated {
				t.Errorf("Raw: %d bytes, truncated %v", len(r.Raw), r.RawTruncated)
			}
			if tt.check != nil {
				tt.check(t, r)
			}
		})
	}
}

// TestImportErrorSummaries: an ERROR summary is an *Error carrying the summary.
func TestImportErrorSummaries(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		body     string
		kind     Kind
		code     string
		msg      string
		era      Era
		rejected []int
	}{
		{name: "C 2.38–2.42 data set not found", status: 409, body: bodyC, kind: KindPermanent, code: "E7600",
			msg: "Import process was aborted: Data set not found or not accessible: `NOPE1234567`", era: Era238, rejected: nil},
		{name: "malformed payload", status: 409, body: bodyMalformed, kind: KindPermanent,
			msg: "The import process failed: Unexpected character", era: EraWebMessage},
		{name: "database deadlock means busy", status: 409, body: bodyDeadlock, kind: KindTransient,
			msg: "DHIS2 is busy: The import process failed", era: EraWebMessage},
		{name: "2.36 bare ERROR with HTTP 200", status: 200, kind: KindPermanent, era: Era236,
			body: `{"responseType":"ImportSummary","status":"ERROR","description":"Import process was aborted",
			 "importCount":{"imported":0,"updated":0,"ignored":3,"deleted":0},
			 "conflicts":[{"object":"NOPE1234567","value":"Data set not found or not accessible"}]}`,
			msg: "Import process was aborted: Data set not found or not accessible"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.handle("POST /api/dataValueSets", reply(tt.status, jsonCT, tt.body))
			c := newTestClient(t, f.url())
			r, err := c.ImportDataValues(context.Background(), jsonPayload(), ImportOptions{})
			if r != nil {
				t.Errorf("result = %+v, want nil", r)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v, want *Error", err)
			}
			if e.Kind != tt.kind || KindOf(err) != tt.kind {
				t.Errorf("Kind = %v, want %v", e.Kind, tt.kind)
			}
			if e.Code != tt.code {
				t.Errorf("Code = %q, want %q", e.Code, tt.code)
			}
			if !strings.Contains(e.Message, tt.msg) {
				t.Errorf("Message = %q, want it to contain %q", e.Message, tt.msg)
			}
			if e.Result == nil {
				t.Fatal("Result is nil")
			}
			if e.Result.Status != StatusError || e.Result.Era != tt.era || !reflect.DeepEqual(e.Result.Rejected, tt.rejected) {
				t.Errorf("Result: status %q era %v rejected %v", e.Result.Status, e.Result.Era, e.Result.Rejected)
			}
			if e.HTTPStatus != tt.status {
				t.Errorf("HTTPStatus = %d", e.HTTPStatus)
			}
			if errors.Is(err, ErrUnauthorized) || errors.Is(err, ErrTooLarge) {
				t.Error("matches an unrelated sentinel")
			}
		})
	}
}

// TestImportRequest checks what goes on the wire: path under the context path, headers,
// auth, the streamed or fixed-length body, gzip, and only the query parameters set.
// largeBody is n bytes of hex digits from a fixed sequence: gzip leaves about half of it,
// so that a body of 3 × MaxBufferedBody outgrows the buffer compressed too.
func largeBody(n int) string {
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, n)
	for i := range b {
		b[i] = "0123456789abcdef"[r.IntN(16)]
	}
	return string(b)
}

func TestImportRequest(t *testing.T) {
	large := largeBody(3 * MaxBufferedBody)
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(testUser+":"+testPassword))
	tests := []struct {
		name      string
		cfg       func(*Config)
		payload   Payload
		opts      ImportOptions
		path      string
		query     url.Values
		auth      string
		chunked   bool
		gzip      bool
		userAgent string
		body      string // what must arrive; samplePayload when empty
	}{
		{
			name: "defaults send nothing optional", payload: jsonPayload(),
			path: "/hmis/api/dataValueSets", query: url.Values{}, auth: basic, userAgent: DefaultUserAgent,
		},
		{
			name: "every option", payload: jsonPayload(),
			cfg: func(c *Config) { c.UserAgent = "tally/1.2.3" },
			opts: ImportOptions{
				Schemes: transform.IDSchemes{IDScheme: "code", DataElement: transform.SchemeCode, OrgUnit: "ATTRIBUTE:aTtRiBuTe01",
					CategoryOptionCombo: transform.SchemeName, DataSet: transform.SchemeUID, AttributeOptionCombo: transform.SchemeCode,
					Category: transform.SchemeCode, CategoryOption: transform.SchemeCode},
				ImportStrategy: "create_and_update", DryRun: true, SkipAudit: true,
				Extra: url.Values{"preheatCache": {"true"}, "strictPeriods": {"true"}},
			},
			path: "/hmis/api/dataValueSets",
			query: url.Values{
				"idScheme": {"CODE"}, "dataElementIdScheme": {"CODE"}, "orgUnitIdScheme": {"ATTRIBUTE:aTtRiBuTe01"},
				"categoryOptionComboIdScheme": {"NAME"}, "dataSetIdScheme": {"UID"},
				"categoryIdScheme": {"CODE"}, "categoryOptionIdScheme": {"CODE"},
				"importStrategy": {"CREATE_AND_UPDATE"}, "dryRun": {"true"}, "skipAudit": {"true"},
				"preheatCache": {"true"}, "strictPeriods": {"true"},
			},
			auth: basic, userAgent: "tally/1.2.3",
		},
		{
			name: "token and API version", payload: Bytes(ContentTypeADX, []byte(samplePayload)),
			cfg:  func(c *Config) { c.Username, c.Password, c.Token, c.APIVersion = "", "", testToken, "37" },
			path: "/hmis/api/37/dataValueSets", query: url.Values{}, auth: "ApiToken " + testToken, userAgent: DefaultUserAgent,
		},
		{
			name: "gzip, buffered", payload: jsonPayload(), cfg: func(c *Config) { c.Gzip = true },
			path: "/hmis/api/dataValueSets", query: url.Values{}, auth: basic, gzip: true, userAgent: DefaultUserAgent,
		},
		{
			// Past MaxBufferedBody the body is streamed as the payload writes it.
			name: "larger than the buffer, streamed", payload: &streamPayload{ct: ContentTypeJSON, data: []byte(large)},
			path: "/hmis/api/dataValueSets", query: url.Values{}, auth: basic, chunked: true, userAgent: DefaultUserAgent, body: large,
		},
		{
			name: "gzip, larger than the buffer once compressed, streamed", payload: &streamPayload{ct: ContentTypeJSON, data: []byte(large)},
			cfg:  func(c *Config) { c.Gzip = true },
			path: "/hmis/api/dataValueSets", query: url.Values{}, auth: basic, chunked: true, gzip: true, userAgent: DefaultUserAgent, body: large,
		},
		{
			name: "at the buffer's size, buffered", payload: &streamPayload{ct: ContentTypeJSON, data: []byte(large[:MaxBufferedBody])},
			path: "/hmis/api/dataValueSets", query: url.Values{}, auth: basic, userAgent: DefaultUserAgent, body: large[:MaxBufferedBody],
		},
		{
			name: "gzip fixed length", payload: Bytes(ContentTypeJSON, []byte(samplePayload)), cfg: func(c *Config) { c.Gzip = true },
			path: "/hmis/api/dataValueSets", query: url.Values{}, auth: basic, gzip: true, userAgent: DefaultUserAgent,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			var te []string
			var cl int64
			h := func(w http.ResponseWriter, r *http.Request) {
				te, cl = r.TransferEncoding, r.ContentLength
				reply(200, jsonCT, bodyD)(w, r)
			}
			f.handle("POST /api/dataValueSets", h)
			f.handle("POST /api/37/dataValueSets", h)
			mods := []func(*Config){}
			if tt.cfg != nil {
				mods = append(mods, tt.cfg)
			}
			c := newTestClient(t, f.url(), mods...)
			if _, err := c.ImportDataValues(context.Background(), tt.payload, tt.opts); err != nil {
				t.Fatalf("ImportDataValues: %v", err)
			}
			reqs := f.requests()
			if len(reqs) != 1 {
				t.Fatalf("%d requests, want 1", len(reqs))
			}
			got := reqs[0]
			if got.Method != http.MethodPost || got.Path != tt.path {
				t.Errorf("request %s %s, want POST %s", got.Method, got.Path, tt.path)
			}
			if !reflect.DeepEqual(url.Values(got.Query), tt.query) {
				t.Errorf("query = %v\nwant    %v", got.Query, tt.query)
			}
			if got.Header.Get("Authorization") != tt.auth {
				t.Errorf("Authorization = %q, want %q", got.Header.Get("Authorization"), tt.auth)
			}
			if got.Header.Get("Accept") != "application/json" || got.Header.Get("User-Agent") != tt.userAgent {
				t.Errorf("Accept %q, User-Agent %q", got.Header.Get("Accept"), got.Header.Get("User-Agent"))
			}
			if got.Header.Get("Content-Type") != tt.payload.ContentType() {
				t.Errorf("Content-Type = %q", got.Header.Get("Content-Type"))
			}
			want := cmp.Or(tt.body, samplePayload)
			if string(got.Body) != want {
				t.Errorf("body of %d bytes, want %d bytes:\n%.200q", len(got.Body), len(want), got.Body)
			}
			if enc := got.Header.Get("Content-Encoding"); (enc == "gzip") != tt.gzip {
				t.Errorf("Content-Encoding = %q, gzip %v", enc, tt.gzip)
			}
			if tt.gzip && len(got.RawBody) == len(got.Body) {
				t.Error("body was not compressed")
			}
			if isChunked := len(te) == 1 && te[0] == "chunked"; isChunked != tt.chunked {
				t.Errorf("transfer encoding %v, content length %d; want chunked %v", te, cl, tt.chunked)
			}
			if !tt.chunked && cl != int64(len(got.RawBody)) {
				t.Errorf("Content-Length %d for %d bytes", cl, len(got.RawBody))
			}
		})
	}
}

// TestImportRefusedBeforeSending: options and content types DHIS2 would refuse are caught
// without a request.
func TestImportRefusedBeforeSending(t *testing.T) {
	tests := []struct {
		name    string
		payload Payload
		opts    ImportOptions
		msg     string
	}{
		{"no payload", nil, ImportOptions{}, "no payload"},
		{"text/csv", Bytes("text/csv", nil), ImportOptions{}, "use application/csv"},
		{"wrong ADX type", Bytes("application/xml+adx", nil), ImportOptions{}, "application/adx+xml"},
		{"unknown type", Bytes("text/plain", nil), ImportOptions{}, "DHIS2 accepts"},
		{"bad strategy", jsonPayload(), ImportOptions{ImportStrategy: "MERGE"}, "importStrategy"},
		{"bad scheme", jsonPayload(), ImportOptions{Schemes: transform.IDSchemes{OrgUnit: "LABEL"}}, "orgUnitIdScheme"},
		{"Extra repeats async", jsonPayload(), ImportOptions{Extra: url.Values{"async": {"true"}}}, `"async"`},
		{"Extra repeats a scheme", jsonPayload(), ImportOptions{Extra: url.Values{"orgUnitIdScheme": {"CODE"}}}, "orgUnitIdScheme"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			c := newTestClient(t, f.url())
			_, err := c.ImportDataValues(context.Background(), tt.payload, tt.opts)
			if !errors.Is(err, ErrPermanent) {
				t.Fatalf("err = %v, want permanent", err)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("err = %q, want it to mention %q", err, tt.msg)
			}
			if n := len(f.requests()); n != 0 {
				t.Errorf("%d requests sent", n)
			}
		})
	}
}

func TestNew(t *testing.T) {
	ok := Config{BaseURL: "https://hmis.example.org/dhis/", Username: "admin", Password: "district"}
	tests := []struct {
		name string
		mod  func(*Config)
		want string // "" for success
	}{
		{"basic", func(*Config) {}, ""},
		{"token", func(c *Config) { c.Username, c.Password, c.Token = "", "", testToken }, ""},
		{"v2 token", func(c *Config) {
			c.Username, c.Password, c.Token = "", "", "d2p_"+strings.Repeat("aB3", 14)+"xy"+"0aZ9bY"
		}, ""},
		{"both", func(c *Config) { c.Token = testToken }, "not both"},
		{"none", func(c *Config) { c.Username, c.Password = "", "" }, "no credentials"},
		{"user without password", func(c *Config) { c.Password = "" }, "both Username and Password"},
		{"colon in user", func(c *Config) { c.Username = "a:b" }, "':'"},
		{"malformed token", func(c *Config) { c.Username, c.Password, c.Token = "", "", "d2pat bad token" }, "malformed"},
		{"empty URL", func(c *Config) { c.BaseURL = "" }, "empty"},
		{"trailing api", func(c *Config) { c.BaseURL = "https://hmis.example.org/api/" }, "leave out /api"},
		{"api inside", func(c *Config) { c.BaseURL = "https://hmis.example.org/dhis/api/37" }, "leave out /api"},
		{"user info", func(c *Config) { c.BaseURL = "https://admin:district@hmis.example.org" }, "user info"},
		{"scheme", func(c *Config) { c.BaseURL = "ftp://hmis.example.org" }, "scheme"},
		{"no host", func(c *Config) { c.BaseURL = "https:///dhis" }, "no host"},
		{"query", func(c *Config) { c.BaseURL = "https://hmis.example.org/?x=1" }, "query"},
		{"negative timeout", func(c *Config) { c.Timeout = -1 }, "Timeout is negative"},
		{"bad API version", func(c *Config) { c.APIVersion = "2.40" }, "APIVersion"},
		{"default client", func(c *Config) { c.HTTPClient = http.DefaultClient }, "DefaultClient"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			tt.mod(&cfg)
			c, err := New(cfg)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				if !strings.HasPrefix(c.root, "https://hmis.example.org/dhis/api") {
					t.Errorf("root = %q", c.root)
				}
				return
			}
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want ErrInvalidConfig mentioning %q", err, tt.want)
			}
			for _, secret := range []string{"district", testToken} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q holds a secret", err)
				}
			}
		})
	}
}

// TestNewKeepsCallerClient: a caller's client is copied; its redirect policy is not
// changed, and the copy never follows redirects.
func TestNewKeepsCallerClient(t *testing.T) {
	called := false
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { called = true; return nil }}
	c, err := New(Config{BaseURL: "http://x", Token: testToken, HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	if c.hc == hc {
		t.Fatal("client not copied")
	}
	if err := hc.CheckRedirect(nil, nil); err != nil || !called {
		t.Error("caller's CheckRedirect replaced")
	}
	if err := c.hc.CheckRedirect(nil, nil); !errors.Is(err, http.ErrUseLastResponse) {
		t.Errorf("copy follows redirects: %v", err)
	}
}
