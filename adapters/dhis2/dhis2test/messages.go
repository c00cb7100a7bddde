package dhis2test

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"time"
)

// POST /api/messageConversations sends a private message
// (MessageConversationController.postObject): the body names subject, text
// and recipients as users, userGroups and organisationUnits (each
// [{"id":…}]); the recipients are the users, the members of the groups and
// the users assigned to the org units. An unknown org unit is 409
// "Organisation Unit does not exist: <id>", an unknown user 409 "User does
// not exist: <id>", an unknown group 404 "UserGroup with id <id> could not
// be found.", no recipient at all 409 "No recipients selected.". Success is
// 201 {"httpStatus":"Created","httpStatusCode":201,"status":"OK","message":
// "Message conversation created"} with Location
// <api>/messageConversations/<uid>. Only application/json bodies are read.
//
// Conversations are stored in Metadata.MessageConversations (Server.Messages
// returns them); GET /api/messageConversations[/{uid}] lists the caller's
// conversations through the metadata API (metadata_api.go), with fields
// id, name and displayName (the subject), subject, messageType, created,
// lastMessage, messageCount, sender, users and messages[text,sender,created].

// MessageConversation is a message conversation started through the API.
type MessageConversation struct {
	ID          string `json:"id" yaml:"id"`
	Subject     string `json:"subject" yaml:"subject"`
	Text        string `json:"text" yaml:"text"`
	MessageType string `json:"messageType" yaml:"messageType"` // PRIVATE
	// Sender is the UID of the user who posted the conversation.
	Sender string `json:"sender,omitempty" yaml:"sender,omitempty"`
	// Users, UserGroups and OrgUnits are the recipients as requested (UIDs).
	Users      []string `json:"users,omitempty" yaml:"users,omitempty"`
	UserGroups []string `json:"userGroups,omitempty" yaml:"userGroups,omitempty"`
	OrgUnits   []string `json:"organisationUnits,omitempty" yaml:"organisationUnits,omitempty"`
	// Recipients are the UIDs of the users the message reached, in metadata
	// order, without the sender.
	Recipients []string  `json:"recipients,omitempty" yaml:"recipients,omitempty"`
	Created    time.Time `json:"created" yaml:"created"`
	UserAgent  string    `json:"userAgent,omitempty" yaml:"userAgent,omitempty"`
}

func (s *Server) messageRoutes() []route {
	return []route{
		{pattern: "POST /messageConversations", handler: s.handlePostMessage},
	}
}

// Messages returns the message conversations sent to the server, oldest
// first.
func (s *Server) Messages() []MessageConversation {
	m := s.metadataSnapshot()
	out := make([]MessageConversation, 0, len(m.MessageConversations))
	for _, c := range m.MessageConversations {
		cp := *c
		cp.Users, cp.UserGroups = slices.Clone(c.Users), slices.Clone(c.UserGroups)
		cp.OrgUnits, cp.Recipients = slices.Clone(c.OrgUnits), slices.Clone(c.Recipients)
		out = append(out, cp)
	}
	return out
}

type idRef struct {
	ID string `json:"id"`
}

type messageIn struct {
	Subject    string  `json:"subject"`
	Text       string  `json:"text"`
	Users      []idRef `json:"users"`
	UserGroups []idRef `json:"userGroups"`
	OrgUnits   []idRef `json:"organisationUnits"`
}

func (s *Server) handlePostMessage(w http.ResponseWriter, r *http.Request) {
	c := callOf(r)
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		ct := r.Header.Get("Content-Type")
		if ct == "" {
			ct = "application/octet-stream"
		}
		writeError(w, r, http.StatusUnsupportedMediaType, fmt.Sprintf("Content type '%s' not supported", ct))
		return
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, 1<<24))
	if err != nil {
		writeError(w, r, http.StatusBadRequest, "Could not read request body: "+err.Error())
		return
	}
	var in messageIn
	if err := json.Unmarshal(raw, &in); err != nil {
		writeError(w, r, http.StatusBadRequest, "Invalid JSON: "+err.Error())
		return
	}
	var conv *MessageConversation
	var failure *apiError
	err = s.UpdateMetadata(func(m *Metadata) error {
		recipients := map[string]bool{}
		conflict := func(msg string) error {
			failure = &apiError{status: http.StatusConflict, message: msg}
			return failure
		}
		var ous, users, groups []string
		for _, o := range in.OrgUnits {
			if m.idx.ou[o.ID] == nil {
				return conflict("Organisation Unit does not exist: " + o.ID)
			}
			ous = append(ous, o.ID)
			for _, u := range m.Users {
				if slices.Contains(u.OrgUnits, o.ID) {
					recipients[u.ID] = true
				}
			}
		}
		for _, ur := range in.Users {
			u := m.User(ur.ID)
			if u == nil || u.ID != ur.ID {
				return conflict("User does not exist: " + ur.ID)
			}
			users = append(users, u.ID)
			recipients[u.ID] = true
		}
		for _, gr := range in.UserGroups {
			if !slices.ContainsFunc(m.UserGroups, func(g *UserGroup) bool { return g.ID == gr.ID }) {
				failure = &apiError{status: http.StatusNotFound, message: "UserGroup with id " + gr.ID + " could not be found."}
				return failure
			}
			groups = append(groups, gr.ID)
			for _, u := range m.Users {
				if slices.Contains(u.UserGroups, gr.ID) {
					recipients[u.ID] = true
				}
			}
		}
		if len(recipients) == 0 {
			return conflict("No recipients selected.")
		}
		conv = &MessageConversation{
			ID:          fmt.Sprintf("MC%09d", len(m.MessageConversations)+1),
			Subject:     in.Subject,
			Text:        in.Text,
			MessageType: "PRIVATE",
			Sender:      c.user.ID,
			Users:       users,
			UserGroups:  groups,
			OrgUnits:    ous,
			Created:     s.now(),
			UserAgent:   r.UserAgent(),
		}
		for _, u := range m.Users {
			if recipients[u.ID] && u.ID != c.user.ID {
				conv.Recipients = append(conv.Recipients, u.ID)
			}
		}
		m.MessageConversations = append(m.MessageConversations, conv)
		return nil
	})
	if failure != nil {
		failure.write(w, r)
		return
	}
	if err != nil {
		writeError(w, r, http.StatusInternalServerError, err.Error())
		return
	}
	s.logger.InfoContext(r.Context(), "message conversation", "id", conv.ID, "subject", conv.Subject,
		"recipients", len(conv.Recipients))
	w.Header().Set("Location", requestBase(r)+c.apiBase+"/messageConversations/"+conv.ID)
	writeBody(w, r, http.StatusCreated, "webMessage",
		webMessage(http.StatusCreated, "OK", "Message conversation created", nil))
}

// messageConversations is the metadata API representation (the caller's
// conversations only).
func (pc *projector) messageConversations() []orderedMap {
	var out []orderedMap
	for _, c := range pc.m.MessageConversations {
		if pc.user != nil && c.Sender != pc.user.ID && !slices.Contains(c.Recipients, pc.user.ID) {
			continue
		}
		participants := append([]string{c.Sender}, c.Recipients...)
		created := c.Created.UTC().Format("2006-01-02T15:04:05.000")
		out = append(out, orderedMap{
			{"id", c.ID}, {"name", c.Subject}, {"displayName", c.Subject}, {"subject", c.Subject},
			{"messageType", c.MessageType}, {"created", created}, {"lastMessage", created}, {"messageCount", 1},
			{"sender", ref{"users", c.Sender}}, {"users", refs("users", participants)},
			{"messages", []orderedMap{{{"text", c.Text}, {"sender", ref{"users", c.Sender}}, {"created", created}}}},
		})
	}
	return out
}
