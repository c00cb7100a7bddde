package dhis2

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strings"
)

// SendMessage starts a message conversation in DHIS2's inbox
// (POST /api/messageConversations) addressed to the members of userGroups and to users
// (uids). DHIS2 may also forward it by e-mail or SMS, as each recipient has chosen. It
// returns the new conversation's uid when DHIS2 names it (the Location header), else "".
// At least one recipient is required.
func (c *Client) SendMessage(ctx context.Context, subject, text string, userGroups, users []string) (string, error) {
	const op = "sending message"
	err := func() error {
		switch {
		case strings.TrimSpace(subject) == "":
			return fmt.Errorf("subject is empty")
		case strings.TrimSpace(text) == "":
			return fmt.Errorf("text is empty")
		case len(userGroups)+len(users) == 0:
			return fmt.Errorf("no recipients")
		}
		if err := checkIDs("userGroups", userGroups, ""); err != nil {
			return err
		}
		return checkIDs("users", users, "")
	}()
	if err != nil {
		return "", &Error{Kind: KindPermanent, Op: op, Message: "refused before sending", Err: err}
	}
	type msg struct {
		Subject    string `json:"subject"`
		Text       string `json:"text"`
		Users      []Ref  `json:"users,omitempty"`
		UserGroups []Ref  `json:"userGroups,omitempty"`
	}
	refs := func(ids []string) []Ref {
		out := make([]Ref, len(ids))
		for i, id := range ids {
			out[i] = Ref{ID: id}
		}
		return out
	}
	res, err := c.postJSON(ctx, op, "/messageConversations", nil,
		msg{Subject: subject, Text: text, Users: refs(users), UserGroups: refs(userGroups)})
	if err != nil {
		return "", err
	}
	if res.status != http.StatusCreated && res.status != http.StatusOK {
		return "", c.statusError(op, res, nil)
	}
	if wm := decodeWebMessage(res.body); wm == nil && len(res.body) > 0 && !isJSON(res) {
		return "", c.unexpectedBody(op, res) // a proxy page: the message may not have been sent
	}
	return conversationID(res), nil
}

// conversationID reads the new conversation's uid from the Location header, or from a
// WebMessage's response.uid.
func conversationID(res *response) string {
	if loc := res.header.Get("Location"); loc != "" {
		if u, err := url.Parse(loc); err == nil {
			if id := path.Base(strings.TrimRight(u.Path, "/")); id != "messageConversations" && id != "." && id != "/" {
				return id
			}
		}
	}
	if wm := decodeWebMessage(res.body); wm != nil && len(wm.Response) > 0 {
		var r struct {
			UID string `json:"uid"`
		}
		if json.Unmarshal(wm.Response, &r) == nil {
			return r.UID
		}
	}
	return ""
}
