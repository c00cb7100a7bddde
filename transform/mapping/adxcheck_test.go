package mapping

import (
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/tally-hmis/tally/transform/metadata"
)

const adxCheckYAML = `sources:
  - {name: adx, format: adx, auth: {public: true}, targets: [broken], mapping: adx}
  - {name: adx-uid, format: adx, auth: {public: true}, targets: [broken], mapping: adx, id_schemes: {id_scheme: UID}}
  - {name: adx-pass, format: adx, auth: {public: true}, targets: [clean], mapping: pass, unmapped: pass}
  - {name: json, format: json, auth: {public: true}, targets: [broken], mapping: adx}
  - {name: adx-noset, format: adx, auth: {public: true}, targets: [broken]}
targets:
  - {name: broken, url: https://hmis.example.org, token: d2pat_0123456789abcdef}
  - {name: clean, url: https://hmis.example.org, token: d2pat_0123456789abcdef}
mappings:
  - name: adx
    target_id_scheme: CODE
    org_units: {scheme: CODE}
    rules:
      - {source: BCG, data_element: EPI_BCG}
      - {source: BCG_F, data_element: EPI_BCG, coc: F_LT1}
      - {source: TREATED, data_element: MAL_TREATED, data_set: MAL_MONTHLY}
  - name: pass
`

// TestCheckADX: in the broken target, AGE's code is not an XML name (so it cannot be an
// ADX attribute, adx.md §7.1), SEX_AGE lacks the option combo for M + 1-4 years, and
// FUNDING's two options share a code. ADX sources report it, once per combo, at their
// line; the JSON source does not; ids by UID need no codes and are XML names. An ADX
// source without a mapping set, whose categories the engine resolves through the target's
// own ids, is checked as one passing its ids through.
func TestCheckADX(t *testing.T) {
	sets, cfg := compile(t, adxCheckYAML, nil)
	broken := kalima(t)
	for i := range broken.Categories {
		if broken.Categories[i].Code == "AGE" {
			broken.Categories[i].Code = "Age group"
		}
	}
	for i := range broken.CategoryOptions {
		if broken.CategoryOptions[i].Code == "NGO" {
			broken.CategoryOptions[i].Code = "GOV"
		}
	}
	broken.CategoryOptionCombos = slices.DeleteFunc(broken.CategoryOptionCombos, func(c metadata.CategoryOptionCombo) bool { return c.Code == "M_1TO4" })
	md := map[string]*metadata.Metadata{"broken": broken, "clean": kalima(t)}
	probs := checkConfig(sets, cfg, md)
	text := strings.ReplaceAll(problemsText(probs), filepath.Dir(cfg.File())+"/", "")
	at := func(src string) string {
		return "tally.yaml:" + strconv.Itoa(lineOf(t, adxCheckYAML, "name: "+src+",")) + ": sources[" + map[string]string{"adx": "0", "adx-uid": "1", "adx-noset": "4"}[src] + "]: "
	}
	want := []string{
		at("adx") + `target "broken": ADX source "adx": category combo SEX_AGE: category Age (ifp28uwCDyd) is written "Age group" by code, which is not an XML name, so it cannot be an ADX attribute`,
		at("adx") + `target "broken": ADX source "adx": category combo SEX_AGE: no option combo has the options M, 1TO4; DHIS2 generates them`,
		at("adx") + `target "broken": ADX source "adx": category combo FUNDING: option Government (pp1xxXHU0BS) of category FUNDING: code "GOV" names more than one category option`,
		at("adx") + `target "broken": ADX source "adx": category combo FUNDING: option NGO partners (cJXj675eVq3) of category FUNDING: code "GOV" names more than one category option`,
		at("adx-uid") + `target "broken": ADX source "adx-uid": category combo SEX_AGE: no option combo has the options M, 1TO4`,
		at("adx-noset") + `target "broken": ADX source "adx-noset": category combo SEX_AGE: category Age (ifp28uwCDyd) is written "Age group" by code`,
		at("adx-noset") + `target "broken": ADX source "adx-noset": category combo SEX_AGE: no option combo has the options M, 1TO4`,
		at("adx-noset") + `target "broken": ADX source "adx-noset": category combo FUNDING: option Government (pp1xxXHU0BS) of category FUNDING`,
		at("adx-noset") + `target "broken": ADX source "adx-noset": category combo FUNDING: option NGO partners (cJXj675eVq3) of category FUNDING`,
	}
	lines := strings.Split(text, "\n")
	for _, w := range want {
		i := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, w) })
		if i < 0 {
			t.Errorf("problems lack\n  %s\nin:\n%s", w, text)
			continue
		}
		lines = slices.Delete(lines, i, i+1)
	}
	if len(lines) > 0 && lines[0] != "" {
		t.Errorf("unexpected problems:\n%s", strings.Join(lines, "\n"))
	}
	if probs := sets.CheckADX(feedsOf(cfg), map[string]*metadata.Metadata{"broken": kalima(t), "clean": kalima(t)}, cfg); len(probs) > 0 {
		t.Errorf("the Kalima HMIS takes ADX as it is:\n%s", problemsText(probs))
	}
}

func TestIsXMLName(t *testing.T) {
	for s, want := range map[string]bool{"SEX": true, "Sex_category": true, "_x": true, "a-b.c": true, "Âge": true, "sexxxxxxxxx": true,
		"": false, "1TO4": false, "Age group": false, "a:b": false, "-x": false, "x/y": false} {
		if isXMLName(s) != want {
			t.Errorf("isXMLName(%q) = %v", s, !want)
		}
	}
}
