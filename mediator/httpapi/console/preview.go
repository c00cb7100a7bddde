package console

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/tally-hmis/tally/mediator/ingest"
)

// The mapping preview: a payload pasted or uploaded for a source, read exactly as ingest
// reads it and mapped for every target of the source by the ingest preview (the admin
// API's POST /admin/v1/preview), nothing stored or sent.

// maxBody bounds what a console form may post (an uploaded payload included).
const maxBody = 32 << 20

// maxPreviewRows bounds the values a target's preview lists; the counts are complete.
const maxPreviewRows = 500

type previewForm struct {
	Source, ContentType, Payload string
}

type previewPage struct {
	Form         previewForm
	Sources      []string
	ContentTypes []string
	Result       *ingest.Preview
	Targets      []*targetPreview
	Problems     []string
}

type targetPreview struct {
	*ingest.TargetPreview
	Values    []namedValue
	Truncated bool
	Rows      []diffRow
}

var contentTypes = []string{"application/json", "application/xml", "application/adx+xml", "application/csv"}

func (c *Console) handlePreviewForm(ec echo.Context) error {
	p := &previewPage{Sources: c.sourceNames(), ContentTypes: contentTypes}
	if len(p.Sources) > 0 {
		p.Form.Source = p.Sources[0]
	}
	return c.render(ec, http.StatusOK, "preview", "Mapping preview", p)
}

func (c *Console) handlePreview(ec echo.Context) error {
	r := ec.Request()
	form := previewForm{Source: r.PostFormValue("source"), ContentType: r.PostFormValue("contentType"), Payload: r.PostFormValue("payload")}
	p := &previewPage{Form: form, Sources: c.sourceNames(), ContentTypes: contentTypes}
	fail := func(status int, msg string) error {
		return c.renderView(ec, status, "preview", view{Title: "Mapping preview", Nav: "preview", Data: p, Error: msg})
	}
	src, ok := c.cfg.Config.Source(form.Source)
	if !ok {
		return fail(http.StatusBadRequest, "source: no source is called "+strconv.Quote(form.Source))
	}
	if c.cfg.Preview == nil {
		return fail(http.StatusServiceUnavailable, "The mapping preview is not available on this server.")
	}
	var body io.Reader = strings.NewReader(form.Payload)
	if f, fh, err := r.FormFile("file"); err == nil {
		defer f.Close()
		body = f
		if form.ContentType == "" {
			form.ContentType = fh.Header.Get("Content-Type")
		}
		p.Form.Payload = "" // an uploaded file is not echoed back
	} else if strings.TrimSpace(form.Payload) == "" {
		return fail(http.StatusBadRequest, "Paste a payload or choose a file.")
	}
	res, err := c.cfg.Preview.Preview(r.Context(), ingest.Request{Source: src, ContentType: form.ContentType, Body: body, Query: r.URL.Query()})
	var re *ingest.RequestError
	switch {
	case errors.Is(err, ingest.ErrPreviewTooLarge):
		return fail(http.StatusRequestEntityTooLarge, err.Error())
	case errors.As(err, &re):
		if re.Input != nil {
			for _, ie := range re.Input.Errs {
				p.Problems = append(p.Problems, ie.Error())
			}
		}
		return fail(re.Status, re.Msg)
	case err != nil:
		return err
	}
	p.Result = res
	for _, tp := range res.Targets {
		n := c.namesOf(r.Context(), tp.Target)
		t := &targetPreview{TargetPreview: tp, Truncated: len(tp.Values) > maxPreviewRows}
		t.Values = n.values(tp.Values[:min(len(tp.Values), maxPreviewRows)])
		if tp.Diff != nil {
			t.Rows = diffRows(tp.Diff, tp.Values, n)
		}
		p.Targets = append(p.Targets, t)
	}
	return c.render(ec, http.StatusOK, "preview", "Mapping preview", p)
}
