package dhis2test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

// Tests of /api/messageConversations (MessageConversationController; the
// notification path a mediator uses to tell DHIS2 users about failures).

const kalimaDistrictOfficers = "iIhOvqiZnCx" // user group DISTRICT_OFFICERS

// MessageConversationController.postObject: recipients from users, user
// groups and org units; 201 "Message conversation created" with Location.
func TestMessagePost(t *testing.T) {
	srv := epServer(t)
	body := `{"subject":"Tally: 3 values rejected","text":"See the dead-letter queue.",` +
		`"userGroups":[{"id":"` + kalimaDistrictOfficers + `"}],"organisationUnits":[{"id":"` + SampleOrgUnitKL + `"}]}`
	r := epDo(t, srv, http.MethodPost, "/api/messageConversations", "application/json", body, epHeader("User-Agent", "tally/1.0"))
	epWantStatus(t, r, http.StatusCreated)
	if string(r.raw) != `{"httpStatus":"Created","httpStatusCode":201,"status":"OK","message":"Message conversation created"}` {
		t.Errorf("body = %s", r.raw)
	}
	if loc := r.header.Get("Location"); !strings.HasSuffix(loc, "/dhis/api/messageConversations/MC000000001") {
		t.Errorf("Location = %q", loc)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("Messages() = %v", msgs)
	}
	m := msgs[0]
	// recipients: the group's member (kl_north) and the users of KL (admin, the sender, is left out)
	if m.ID != "MC000000001" || m.Subject != "Tally: 3 values rejected" || m.Text != "See the dead-letter queue." ||
		m.Sender != "ftUvXQIChPn" || !slices.Equal(m.Recipients, []string{"lnhG2BqxLHm"}) ||
		!slices.Equal(m.UserGroups, []string{kalimaDistrictOfficers}) || !slices.Equal(m.OrgUnits, []string{SampleOrgUnitKL}) ||
		m.MessageType != "PRIVATE" || !m.Created.Equal(epNow) || m.UserAgent != "tally/1.0" {
		t.Errorf("message = %+v", m)
	}
}

// MessageConversationController: unknown org units and users are 409, an
// unknown user group 404, no recipient 409 "No recipients selected.".
func TestMessageErrors(t *testing.T) {
	srv := epServer(t)
	post := func(body string) epResp {
		return epDo(t, srv, http.MethodPost, "/api/messageConversations", "application/json", body)
	}
	epWantError(t, post(`{"subject":"x","text":"y"}`), http.StatusConflict, "", "No recipients selected.")
	epWantError(t, post(`{"subject":"x","text":"y","users":[{"id":"XXXXXXXXXXX"}]}`), http.StatusConflict, "", "User does not exist: XXXXXXXXXXX")
	epWantError(t, post(`{"subject":"x","text":"y","organisationUnits":[{"id":"XXXXXXXXXXX"}]}`), http.StatusConflict, "",
		"Organisation Unit does not exist: XXXXXXXXXXX")
	epWantError(t, post(`{"subject":"x","text":"y","userGroups":[{"id":"XXXXXXXXXXX"}]}`), http.StatusNotFound, "",
		"UserGroup with id XXXXXXXXXXX could not be found.")
	epWantStatus(t, epDo(t, srv, http.MethodPost, "/api/messageConversations", "text/plain", "hi"), http.StatusUnsupportedMediaType)
	if n := len(srv.Messages()); n != 0 {
		t.Errorf("%d messages stored after failures", n)
	}
}

// GET lists the caller's conversations (as sender or recipient) with the
// metadata API's pager and fields.
func TestMessageList(t *testing.T) {
	srv := epServer(t)
	for _, to := range []string{"lnhG2BqxLHm", "ftUvXQIChPn"} {
		epWantStatus(t, epDo(t, srv, http.MethodPost, "/api/messageConversations", "application/json",
			`{"subject":"to `+to+`","text":"t","users":[{"id":"`+to+`"}]}`), http.StatusCreated)
	}
	r := epGet(t, srv, "/api/messageConversations?fields=id,subject,messageType,users[username],messages[text]&order=subject:asc")
	want := `{"pager":{"page":1,"total":2,"pageSize":50,"pageCount":1},"messageConversations":[` +
		`{"id":"MC000000002","subject":"to ftUvXQIChPn","messageType":"PRIVATE","users":[{"username":"admin"}],"messages":[{"text":"t"}]},` +
		`{"id":"MC000000001","subject":"to lnhG2BqxLHm","messageType":"PRIVATE","users":[{"username":"admin"},{"username":"kl_north"}],"messages":[{"text":"t"}]}]}`
	if string(r.raw) != want {
		t.Errorf("admin list\n got %s\nwant %s", r.raw, want)
	}
	r = epGet(t, srv, "/api/messageConversations.json?paging=false", epAs(SampleDistrictUser, SampleDistrictPassword))
	if string(r.raw) != `{"messageConversations":[{"id":"MC000000001","displayName":"to lnhG2BqxLHm"}]}` {
		t.Errorf("kl_north list = %s", r.raw)
	}
	epWantError(t, epGet(t, srv, "/api/messageConversations/MC000000002", epAs(SampleDistrictUser, SampleDistrictPassword)),
		http.StatusNotFound, "", "MessageConversation with id MC000000002 could not be found.")
}
