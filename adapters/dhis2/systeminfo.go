package dhis2

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Version is a DHIS2 release as /api/system/info reports it ("2.40.3.1", "2.41-SNAPSHOT").
type Version struct {
	Major, Minor, Patch, Hotfix int
	// Raw is the version string as reported.
	Raw string
}

// ParseVersion reads a DHIS2 version string: numbers separated by dots, optionally
// followed by a "-suffix" (SNAPSHOT, rc1, EMBARGOED) that is ignored.
func ParseVersion(s string) (Version, error) {
	v := Version{Raw: s}
	t := strings.TrimPrefix(strings.TrimSpace(s), "v")
	if i := strings.IndexAny(t, "-+ "); i >= 0 {
		t = t[:i]
	}
	parts := strings.Split(t, ".")
	if len(parts) < 2 || len(parts) > 4 {
		return Version{}, fmt.Errorf("DHIS2 version %q: want MAJOR.MINOR[.PATCH[.HOTFIX]]", s)
	}
	dst := []*int{&v.Major, &v.Minor, &v.Patch, &v.Hotfix}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return Version{}, fmt.Errorf("DHIS2 version %q: %q is not a number", s, p)
		}
		*dst[i] = n
	}
	return v, nil
}

// Release is the DHIS2 release number: 40 for 2.40.x. (Should DHIS2 number releases
// 43.x, that is read as 43 too.)
func (v Version) Release() int {
	if v.Major == 2 {
		return v.Minor
	}
	return v.Major
}

func (v Version) String() string {
	if v.Raw != "" {
		return v.Raw
	}
	return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch)
}

// era is the response shape an unversioned /api/dataValueSets gets from this release.
func (v Version) era() Era {
	switch r := v.Release(); {
	case r == 0:
		return EraUnknown
	case r <= 36:
		return Era236
	case r == 37:
		return Era237
	case r <= 42:
		return Era238
	}
	return Era243
}

// SystemInfo is the part of GET /api/system/info the client reads.
type SystemInfo struct {
	Version          string    `json:"version"`
	Revision         string    `json:"revision"`
	BuildTime        time.Time `json:"buildTime"`
	ServerDate       time.Time `json:"serverDate"`
	ServerTimeZoneID string    `json:"serverTimeZoneId"`
	ContextPath      string    `json:"contextPath"`
	Calendar         string    `json:"calendar"`
	DateFormat       string    `json:"dateFormat"`
	SystemID         string    `json:"systemId"`
	SystemName       string    `json:"systemName"`
	InstanceBaseURL  string    `json:"instanceBaseUrl"`
	// Release is Version parsed; zero if it could not be.
	Release Version `json:"-"`
}

// Era is the response shape an unversioned import on this server has (§0.3).
func (s *SystemInfo) Era() Era { return s.Release.era() }

type wireSystemInfo struct {
	Version          string `json:"version"`
	Revision         string `json:"revision"`
	BuildTime        string `json:"buildTime"`
	ServerDate       string `json:"serverDate"`
	ServerTimeZoneID string `json:"serverTimeZoneId"`
	ContextPath      string `json:"contextPath"`
	Calendar         string `json:"calendar"`
	DateFormat       string `json:"dateFormat"`
	SystemID         string `json:"systemId"`
	SystemName       string `json:"systemName"`
	InstanceBaseURL  string `json:"instanceBaseUrl"`
}

// SystemInfo reads GET /api/system/info. The version it reports is remembered and
// refines the Era of later import results whose bodies alone cannot tell it.
func (c *Client) SystemInfo(ctx context.Context) (*SystemInfo, error) {
	const op = "reading system info"
	res, err := c.roundTrip(ctx, request{op: op, method: http.MethodGet, endpoint: "/system/info"})
	if err != nil {
		return nil, err
	}
	if res.status != http.StatusOK {
		return nil, c.statusError(op, res, nil)
	}
	body := bytes.TrimSpace(res.body)
	if !isJSON(res) {
		return nil, c.unexpectedBody(op, res)
	}
	var w wireSystemInfo
	if err := json.Unmarshal(body, &w); err != nil || w.Version == "" {
		kept, _ := c.keep(res.body)
		return nil, &Error{Kind: KindPermanent, Op: op, HTTPStatus: res.status, Body: kept,
			Message: "the answer is not DHIS2 system info; check BaseURL"}
	}
	info := &SystemInfo{
		Version: w.Version, Revision: w.Revision, ServerTimeZoneID: w.ServerTimeZoneID,
		ContextPath: w.ContextPath, Calendar: w.Calendar, DateFormat: w.DateFormat,
		SystemID: w.SystemID, SystemName: w.SystemName, InstanceBaseURL: w.InstanceBaseURL,
	}
	loc := time.UTC
	if w.ServerTimeZoneID != "" {
		if l, err := time.LoadLocation(w.ServerTimeZoneID); err == nil {
			loc = l
		}
	}
	info.BuildTime = parseDHIS2Time(w.BuildTime, loc)
	info.ServerDate = parseDHIS2Time(w.ServerDate, loc)
	if v, err := ParseVersion(w.Version); err == nil {
		info.Release = v
		c.server.Store(&v)
	}
	return info, nil
}

// ServerVersion returns the version the last successful SystemInfo read, and false when
// none was read yet.
func (c *Client) ServerVersion() (Version, bool) {
	if v := c.server.Load(); v != nil {
		return *v, true
	}
	return Version{}, false
}

// parseDHIS2Time reads the timestamps DHIS2 writes (yyyy-MM-dd'T'HH:mm:ss.SSS, with or
// without a zone). A stamp without a zone is read in loc. Unreadable stamps give zero.
func parseDHIS2Time(s string, loc *time.Location) time.Time {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.000Z0700", "2006-01-02T15:04:05Z0700"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t
		}
	}
	for _, layout := range []string{"2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t
		}
	}
	return time.Time{}
}
