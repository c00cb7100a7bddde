package dhis2

import (
	"context"
	"net/http"
	"strings"
	"testing"
)

const messageCreated = `{"httpStatus":"Created","httpStatusCode":201,"status":"OK","message":"Message conversation created"}`

func TestSendMessage(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
		id      string
		kind    Kind
		msg     string
	}{
		{name: "201 with Location", handler: reply(201, jsonCT, messageCreated, "Location", "https://hmis.example.org/hmis/api/messageConversations/ZjHHSjyyeJ2"),
			id: "ZjHHSjyyeJ2"},
		{name: "relative Location", handler: reply(201, jsonCT, messageCreated, "Location", "/hmis/api/messageConversations/ZjHHSjyyeJ2/"),
			id: "ZjHHSjyyeJ2"},
		{name: "uid in the WebMessage", handler: reply(201, jsonCT, `{"httpStatus":"Created","httpStatusCode":201,"status":"OK",
		 "response":{"responseType":"ObjectReport","uid":"GDBqVfkmnp2"}}`), id: "GDBqVfkmnp2"},
		{name: "no id", handler: reply(201, "", ""), id: ""},
		{name: "unknown recipient", handler: reply(409, jsonCT, `{"httpStatus":"Conflict","httpStatusCode":409,"status":"ERROR","message":"No recipients selected."}`),
			kind: KindPermanent, msg: "No recipients"},
		{name: "403", handler: reply(403, jsonCT, body403JSON), kind: KindPermanent, msg: "E1006"},
		{name: "503", handler: reply(503, "text/html", "<html><head><title>Service Unavailable</title></head></html>"),
			kind: KindTransient, msg: "Service Unavailable"},
		{name: "200 proxy page", handler: reply(200, "text/html", "<html><head><title>Sign in</title></head></html>"),
			kind: KindTransient, msg: "Sign in"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.handle("POST /api/messageConversations", tt.handler)
			c := newTestClient(t, f.url())
			id, err := c.SendMessage(context.Background(), "Tally: 3 values rejected", "MAL_MONTHLY 202401: see the dead letters.",
				[]string{"AdminGroup1"}, []string{"xE7jOejl9FI", "OYLGMiazHtW"})
			rq := f.requests()[0]
			const want = `{"subject":"Tally: 3 values rejected","text":"MAL_MONTHLY 202401: see the dead letters.",` +
				`"users":[{"id":"xE7jOejl9FI"},{"id":"OYLGMiazHtW"}],"userGroups":[{"id":"AdminGroup1"}]}`
			if string(rq.Body) != want || rq.Header.Get("Content-Type") != ContentTypeJSON {
				t.Errorf("body = %s", rq.Body)
			}
			if tt.kind != 0 {
				e := wantKind(t, err, tt.kind)
				if !strings.Contains(e.Error(), tt.msg) {
					t.Errorf("err = %q, want it to mention %q", e, tt.msg)
				}
				return
			}
			if err != nil || id != tt.id {
				t.Fatalf("id %q, err %v; want %q", id, err, tt.id)
			}
		})
	}
}

func TestSendMessageRefused(t *testing.T) {
	f := newFake(t)
	c := newTestClient(t, f.url())
	for _, tc := range []struct {
		subject, text string
		groups, users []string
	}{
		{"", "text", []string{"g"}, nil},
		{"subject", " ", nil, []string{"u"}},
		{"subject", "text", nil, nil},
		{"subject", "text", []string{""}, nil},
	} {
		if _, err := c.SendMessage(context.Background(), tc.subject, tc.text, tc.groups, tc.users); KindOf(err) != KindPermanent {
			t.Errorf("%+v: err = %v", tc, err)
		}
	}
	if n := len(f.requests()); n != 0 {
		t.Errorf("%d requests sent", n)
	}
	// Only groups: no empty users list on the wire.
	f.handle("POST /api/messageConversations", reply(201, jsonCT, messageCreated))
	if _, err := c.SendMessage(context.Background(), "s", "t", []string{"g"}, nil); err != nil {
		t.Fatal(err)
	}
	if b := string(f.requests()[0].Body); strings.Contains(b, "users") {
		t.Errorf("body = %s", b)
	}
}
