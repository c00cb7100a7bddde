package dhis2

import (
	"context"
	"errors"
	"testing"
	"time"
)

const systemInfo240 = `{"contextPath":"https://hmis.example.org/hmis","userAgent":"tally-dhis2-client",
 "calendar":"iso8601","dateFormat":"yyyy-mm-dd","serverDate":"2024-03-15T10:20:30.123",
 "serverTimeZoneId":"Etc/UTC","serverTimeZoneDisplayName":"Coordinated Universal Time",
 "version":"2.40.3.1","revision":"c1a2b3d","buildTime":"2024-02-01T09:00:00.000",
 "systemId":"eed3d451-4ff5-4193-b951-ffcc68954299","systemName":"Kalima HMIS",
 "instanceBaseUrl":"https://hmis.example.org/hmis","emailConfigured":false,"redisEnabled":false,
 "isMetadataVersionEnabled":true,"databaseInfo":{"spatialSupport":true}}`

func TestSystemInfo(t *testing.T) {
	f := newFake(t)
	f.handle("GET /api/system/info", reply(200, jsonCT, systemInfo240))
	c := newTestClient(t, f.url())
	if _, ok := c.ServerVersion(); ok {
		t.Error("ServerVersion known before SystemInfo")
	}
	info, err := c.SystemInfo(context.Background())
	if err != nil {
		t.Fatalf("SystemInfo: %v", err)
	}
	if v, ok := c.ServerVersion(); !ok || v.Release() != 40 {
		t.Errorf("ServerVersion = %v, %v", v, ok)
	}
	if info.Version != "2.40.3.1" || info.Revision != "c1a2b3d" || info.SystemName != "Kalima HMIS" ||
		info.ServerTimeZoneID != "Etc/UTC" || info.Calendar != "iso8601" || info.ContextPath != "https://hmis.example.org/hmis" {
		t.Errorf("info = %+v", info)
	}
	if want := time.Date(2024, 3, 15, 10, 20, 30, 123e6, time.UTC); !info.ServerDate.Equal(want) {
		t.Errorf("ServerDate = %v, want %v", info.ServerDate, want)
	}
	if want := time.Date(2024, 2, 1, 9, 0, 0, 0, time.UTC); !info.BuildTime.Equal(want) {
		t.Errorf("BuildTime = %v, want %v", info.BuildTime, want)
	}
	if info.Release.Major != 2 || info.Release.Minor != 40 || info.Release.Patch != 3 || info.Release.Hotfix != 1 {
		t.Errorf("Release = %+v", info.Release)
	}
	if info.Era() != Era238 {
		t.Errorf("Era = %v", info.Era())
	}
	if v := c.server.Load(); v == nil || v.Release() != 40 {
		t.Errorf("server version not remembered: %v", v)
	}
	if got := f.requests()[0]; got.Path != "/hmis/api/system/info" || got.Header.Get("Accept") != "application/json" {
		t.Errorf("request %s, Accept %q", got.Path, got.Header.Get("Accept"))
	}
}

func TestSystemInfoFailures(t *testing.T) {
	tests := []struct {
		name         string
		status       int
		contentType  string
		body         string
		kind         Kind
		unauthorized bool
	}{
		{"401", 401, jsonCT, body401JSON, KindPermanent, true},
		{"502 proxy", 502, "text/html", body502Proxy, KindTransient, false},
		{"not system info", 200, jsonCT, `{"hello":"world"}`, KindPermanent, false},
		{"HTML on 200", 200, "text/html", "<html><head><title>Welcome to nginx!</title></head></html>", KindTransient, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.handle("GET /api/system/info", reply(tt.status, tt.contentType, tt.body))
			c := newTestClient(t, f.url())
			_, err := c.SystemInfo(context.Background())
			wantKind(t, err, tt.kind)
			if errors.Is(err, ErrUnauthorized) != tt.unauthorized {
				t.Errorf("ErrUnauthorized = %v", !tt.unauthorized)
			}
			if c.server.Load() != nil {
				t.Error("a failed read set the server version")
			}
		})
	}
}

func TestParseVersion(t *testing.T) {
	tests := []struct {
		in      string
		release int
		era     Era
		bad     bool
	}{
		{in: "2.36.12.1", release: 36, era: Era236},
		{in: "2.37.9", release: 37, era: Era237},
		{in: "2.39.1.2-EMBARGOED", release: 39, era: Era238},
		{in: "2.41-SNAPSHOT", release: 41, era: Era238},
		{in: "2.42.0-rc1", release: 42, era: Era238},
		{in: "2.43.1", release: 43, era: Era243},
		{in: "v2.44.0", release: 44, era: Era243},
		{in: "43.0.1", release: 43, era: Era243},
		{in: "2", bad: true},
		{in: "2.x", bad: true},
		{in: "", bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			v, err := ParseVersion(tt.in)
			if tt.bad {
				if err == nil {
					t.Fatalf("ParseVersion(%q) = %+v, want an error", tt.in, v)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if v.Release() != tt.release || v.era() != tt.era || v.String() != tt.in {
				t.Errorf("release %d, era %v, string %q", v.Release(), v.era(), v.String())
			}
		})
	}
}
