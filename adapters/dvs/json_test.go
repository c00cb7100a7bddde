package dvs

import (
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/tally-hmis/tally/transform"
)

func TestDecodeJSON(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		opts   Options
		checks []check
	}{
		{"values as strings, numbers, booleans and null",
			`{"dataValues":[{"dataElement":"A","value":"7"},{"dataElement":"A","value":12},{"dataElement":"A","value":1.50},
			{"dataElement":"A","value":-0.5e-3},{"dataElement":"A","value":true},{"dataElement":"A","value":false},
			{"dataElement":"A","value":null},{"dataElement":"A","value":0}]}`, Options{},
			[]check{values("7", "12", "1.50", "-0.5e-3", "true", "false", "", "0")}},
		{"identifiers written as numbers keep their text",
			`{"orgUnit":123,"dataValues":[{"dataElement":42,"period":202401,"value":"1"}]}`, Options{},
			[]check{value(0, transform.DataValue{DataElement: "42", Period: "202401", OrgUnit: "123", Value: "1"})}},
		{"escapes",
			`{"dataValues":[{"dataElement":"A","value":"1","comment":"q\" b\\ s\/ \b\f\n\r\t \u00e9 \ud83d\ude00 \u0041"}]}`, Options{},
			[]check{field("Comment", "q\" b\\ s/ \b\f\n\r\t é 😀 A")}},
		{"raw UTF-8 is kept",
			`{"dataValues":[{"dataElement":"Ç","value":"1","comment":"mùltí bytè ✓ 😀"}]}`, Options{},
			[]check{field("DataElement", "Ç"), field("Comment", "mùltí bytè ✓ 😀")}},
		{"null means absent",
			`{"dataSet":null,"period":null,"dataValues":[{"dataElement":"A","period":"202401","orgUnit":null,"comment":null,"value":"1","followup":null,"deleted":null}]}`,
			Options{}, []check{group(transform.Group{}),
				value(0, transform.DataValue{DataElement: "A", Period: "202401", Value: "1"})}},
		{"followup, followUp and deleted in every spelling",
			`[{"dataElement":"A","followup":true},{"dataElement":"A","followUp":true},{"dataElement":"A","followUp":"TRUE"},
			{"dataElement":"A","followup":false,"deleted":true},{"dataElement":"A","deleted":"true"},{"dataElement":"A","deleted":"False"}]`,
			Options{}, []check{
				countWhere("followed up", 3, func(v *transform.DataValue) bool { return v.FollowUp }),
				deletedAt(3, 4)}},
		{"the header replaces period, org unit and attribute option combo",
			`{"dataSet":"MAL_MONTHLY","completeDate":"2024-02-03","period":"202401","orgUnit":"KL_N_F1","attributeOptionCombo":"GOV",
			"dataValues":[{"dataElement":"MAL_TREATED","period":"202312","orgUnit":"KL_S_F2","attributeOptionCombo":"NGO","value":"4"},
			{"dataElement":"MAL_CONFIRMED","categoryOptionCombo":"F_LT1","value":"9"}]}`, Options{},
			[]check{group(transform.Group{DataSet: "MAL_MONTHLY", CompleteDate: "2024-02-03"}),
				value(0, transform.DataValue{DataElement: "MAL_TREATED", Period: "202401", OrgUnit: "KL_N_F1", AttributeOptionCombo: "GOV", Value: "4"}),
				value(1, transform.DataValue{DataElement: "MAL_CONFIRMED", Period: "202401", OrgUnit: "KL_N_F1", CategoryOptionCombo: "F_LT1",
					AttributeOptionCombo: "GOV", Value: "9"})}},
		{"values before the header",
			`{"dataValues":[{"dataElement":"MAL_TREATED","value":"4"},{"dataElement":"EPI_BCG","period":"202312","value":"2"}],
			"period":"202401","orgUnit":"KL_N_F1","dataSet":"MAL_MONTHLY","idScheme":"code","orgUnitIdScheme":"CODE","extra":[1,{"a":2}]}`, Options{},
			[]check{group(transform.Group{DataSet: "MAL_MONTHLY", Schemes: transform.IDSchemes{IDScheme: transform.SchemeCode, OrgUnit: transform.SchemeCode}}),
				field("Period", "202401", "202401"), field("OrgUnit", "KL_N_F1", "KL_N_F1")}},
		{"header split around the values",
			`{"dataSet":"MAL_MONTHLY","dataValues":[{"dataElement":"MAL_TREATED","value":"4"}],"period":"202401","orgUnit":"KL_N_F1"}`, Options{},
			[]check{group(transform.Group{DataSet: "MAL_MONTHLY"}), field("Period", "202401"), field("OrgUnit", "KL_N_F1")}},
		{"more values than are held, header first",
			`{"period":"202401","orgUnit":"KL_N_F1","dataValues":[{"dataElement":"A","value":"1"},{"dataElement":"B","value":"2"},{"dataElement":"C","value":"3"}]}`,
			Options{MaxHeldValues: 1}, []check{count(3), field("Period", "202401", "202401", "202401")}},
		{"after the held values, repeating a header field unchanged or adding unknown keys is fine",
			`{"period":"202401","dataValues":[{"dataElement":"A","value":"1"},{"dataElement":"B","value":"2"}],"period":"202401","dataSet":null,"x":{"y":1}}`,
			Options{MaxHeldValues: 1}, []check{count(2), field("Period", "202401", "202401")}},
		{"unknown keys are skipped, nested ones too",
			`{"x":{"a":[1,2,{"b":[[],{}]}],"c":"d"},"dataValues":[{"dataElement":"A","created":"2024-01-01","lastUpdated":"x","id":{"n":[null,true,false,-1.5e+3]},"value":"1"}],"y":[]}`,
			Options{}, []check{count(1), value(0, transform.DataValue{DataElement: "A", Value: "1"})}},
		{"attributeCategoryOptions identify the attribute option combo by options",
			`{"attributeCategoryOptions":["GOV_OPT","Q1"],"dataValues":[{"dataElement":"A","attributeOptionCombo":"NGO","value":"1"}]}`, Options{},
			[]check{value(0, transform.DataValue{DataElement: "A", Value: "1",
				Attributes: []transform.CategoryOption{{Option: "GOV_OPT"}, {Option: "Q1"}}})}},
		{"combos written as category → option objects (DHIS2 2.43)",
			`[{"dataElement":"MAL_CONFIRMED","categoryOptionCombo":{"SEX":"F","AGE":"LT1"},"attributeOptionCombo":{"FUNDING":"GOV"},"value":"3"}]`, Options{},
			[]check{value(0, transform.DataValue{DataElement: "MAL_CONFIRMED", Value: "3",
				Categories: []transform.CategoryOption{{Category: "SEX", Option: "F"}, {Category: "AGE", Option: "LT1"}},
				Attributes: []transform.CategoryOption{{Category: "FUNDING", Option: "GOV"}}})}},
		{"a bare array of values has no header",
			"[\n{\"dataElement\":\"relevant\",\"orgUnit\":\"ou-chu\",\"value\":0}\n]", Options{},
			[]check{group(transform.Group{}), count(1), values("0")}},
		{"byte order mark, CRLF and tabs",
			"\uFEFF{\r\n\t\"dataValues\" :\t[ { \"dataElement\" : \"A\" , \"value\" : \"1\" } ]\r\n}\r\n", Options{},
			[]check{count(1)}},
		{"an empty object is an empty set", `{}`, Options{}, []check{count(0), group(transform.Group{})}},
		{"dataValues null", `{"dataSet":"X","dataValues":null}`, Options{}, []check{count(0), group(transform.Group{DataSet: "X"})}},
		{"analytics output: [aggregated] dropped, totals without combos",
			`{"dataValues":[{"dataElement":"MAL_TREATED","period":"202401","orgUnit":"KL","value":"123","comment":"[aggregated]","storedBy":"[aggregated]",
			"created":"2024-03-15","lastUpdated":"2024-03-15","followup":false},
			{"dataElement":"MAL_CONFIRMED","period":"202401","orgUnit":"KL","categoryOptionCombo":"F_LT1","value":"2.0","comment":"checked"}]}`,
			Options{Analytics: true},
			[]check{value(0, transform.DataValue{DataElement: "MAL_TREATED", Period: "202401", OrgUnit: "KL", Value: "123"}),
				field("Comment", "", "checked"), field("CategoryOptionCombo", "", "F_LT1"), values("123", "2.0")}},
		{"analytics comment kept without the option",
			`[{"dataElement":"A","value":"1","comment":"[aggregated]"}]`, Options{}, []check{field("Comment", "[aggregated]")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, reader := range []struct {
				name string
				wrap func(io.Reader) io.Reader
			}{
				{"whole", func(r io.Reader) io.Reader { return r }},
				{"one byte at a time", iotest.OneByteReader},
				{"half reads", iotest.HalfReader},
			} {
				var s recSink
				if err := DecodeJSON(reader.wrap(strings.NewReader(tt.in)), &s, tt.opts); err != nil {
					t.Fatalf("%s: %v", reader.name, err)
				}
				for _, c := range tt.checks {
					c(t, &s)
				}
			}
		})
	}
}

func TestDecodeJSONHeader(t *testing.T) {
	in := `{"dataValues":[{"dataElement":"A","value":"1"}],"dryRun":true,"strategy":"DELETE","dataSet":"DS","period":"202401",
		"orgUnit":"OU","attributeOptionCombo":"GOV","completeDate":"2024-02-01","dataElementIdScheme":"CODE","categoryOptionComboIdScheme":"attribute:abcdefghijk"}`
	var got *Header
	var s recSink
	err := DecodeJSON(strings.NewReader(in), &s, Options{OnHeader: func(h *Header) error {
		if len(s.groups) != 0 {
			t.Error("OnHeader called after Group")
		}
		cp := *h
		got = &cp
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	dry := true
	want := &Header{DataSet: "DS", CompleteDate: "2024-02-01", Period: "202401", OrgUnit: "OU", AttributeOptionCombo: "GOV",
		Schemes: transform.IDSchemes{DataElement: transform.SchemeCode, CategoryOptionCombo: "ATTRIBUTE:abcdefghijk"},
		DryRun:  &dry, Strategy: "DELETE"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("header\n got %+v\nwant %+v", got, want)
	}
	stop := errors.New("refused")
	err = DecodeJSON(strings.NewReader(in), &recSink{}, Options{OnHeader: func(*Header) error { return stop }})
	if !errors.Is(err, stop) {
		t.Errorf("OnHeader error: got %v", err)
	}
}

// TestDecodeJSONPositions checks where values are said to be, for values delivered at once,
// values held back for the header, and values whose start left the buffer.
func TestDecodeJSONPositions(t *testing.T) {
	in := "{\"dataSet\":\"DS\",\n\"dataValues\":[\n  {\"dataElement\":\"A\",\"value\":\"1\"},\n\t{\"dataElement\":\"é\",\"value\":\"2\"}, {\"dataElement\":\"C\",\n\"value\":\"3\"}]}"
	want := []transform.Pos{
		{Line: 3, Column: 3, Path: "dataValues[0]"},
		{Line: 4, Column: 2, Path: "dataValues[1]"},
		{Line: 4, Column: 35, Path: "dataValues[2]"},
	}
	for _, held := range []int{0, 1, 10} {
		for _, r := range []io.Reader{strings.NewReader(in), iotest.OneByteReader(strings.NewReader(in))} {
			var s recSink
			if err := DecodeJSON(r, &s, Options{MaxHeldValues: held}); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(s.pos, want) {
				t.Errorf("held %d: positions\n got %v\nwant %v", held, s.pos, want)
			}
		}
	}
}

// TestDecodeJSONBatcher runs values through the Batcher: validation problems come back
// with the value's place, whether it was held back or streamed.
func TestDecodeJSONBatcher(t *testing.T) {
	in := "{\"dataValues\":[\n{\"dataElement\":\"A\",\"period\":\"202401\",\"orgUnit\":\"KL\",\"value\":\"1\"},\n" +
		"{\"dataElement\":\"A\",\"period\":\"2024-13\",\"orgUnit\":\"KL\",\"value\":\"1\"},\n" +
		"{\"dataElement\":\"A\",\"period\":\"202401\",\"value\":\"1\"}]}"
	for _, held := range []int{1, 100} {
		run, err := runBatcher(t, jsonDecode(Options{MaxHeldValues: held}), in, 10)
		if err != nil {
			t.Fatal(err)
		}
		if run.errs == nil || len(run.errs.Errs) != 2 {
			t.Fatalf("held %d: errors %v, want 2", held, run.errs)
		}
		got := fmt.Sprint(run.errs.Errs[0], " | ", run.errs.Errs[1])
		want := `line 3, column 1, dataValues[1]: data value 1: period "2024-13": a DHIS2 period id such as 202401, 2024Q1, 2024W5 or 2024 | ` +
			`line 4, column 1, dataValues[2]: data value 2: orgUnit: missing: set it on the value or the data value set`
		if got != want {
			t.Errorf("held %d:\n got %s\nwant %s", held, got, want)
		}
	}
	// the Batcher's error bound stops the parse
	many := "[" + strings.Repeat(`{"dataElement":"A"},`, 20) + `{"dataElement":"A"}]`
	err := DecodeJSON(strings.NewReader(many), transform.NewBatcher(transform.BatcherConfig{MaxErrors: 3,
		Emit: func(*transform.Batch) error { return nil }}), Options{})
	if !errors.Is(err, transform.ErrTooManyErrors) {
		t.Errorf("got %v, want ErrTooManyErrors", err)
	}
}

type failSink struct {
	recSink
	after int
	err   error
}

func (s *failSink) Value(v *transform.DataValue, at transform.Locator) error {
	if len(s.values) == s.after {
		return s.err
	}
	return s.recSink.Value(v, at)
}

func TestDecodeJSONSinkAndReaderErrors(t *testing.T) {
	boom := errors.New("boom")
	s := &failSink{after: 1, err: boom}
	err := DecodeJSON(strings.NewReader(`[{"dataElement":"A"},{"dataElement":"B"},{"dataElement":"C"}]`), s, Options{})
	if !errors.Is(err, boom) || len(s.values) != 1 {
		t.Errorf("sink error: got %v after %d values", err, len(s.values))
	}
	err = DecodeJSON(io.MultiReader(strings.NewReader(`{"dataValues":[`), iotest.ErrReader(boom)), &recSink{}, Options{})
	if !errors.Is(err, boom) {
		t.Errorf("reader error: got %v", err)
	}
	var ie *transform.InputError
	if errors.As(err, &ie) {
		t.Errorf("a read error is not the sender's fault: %v", err)
	}
}

func TestDecodeJSONErrors(t *testing.T) {
	deep := strings.Repeat("[", 70) + strings.Repeat("]", 70)
	tests := []struct {
		name string
		in   string
		opts Options
		want transform.InputError // Expected is matched as a substring
	}{
		{"empty body", "", Options{}, transform.InputError{Pos: transform.Pos{Line: 1, Column: 1}, Index: -1, Expected: "the body is empty"}},
		{"only whitespace", " \n ", Options{}, transform.InputError{Pos: transform.Pos{Line: 1, Column: 1}, Index: -1, Expected: "the body is empty"}},
		{"unknown strategy", "{\n \"strategy\": \"SYNC\"}", Options{}, transform.InputError{Pos: transform.Pos{Line: 2, Column: 14, Path: "strategy"},
			Index: -1, Field: "strategy", Value: "SYNC", Expected: "an import strategy"}},
		{"top-level string", `"x"`, Options{}, transform.InputError{Pos: transform.Pos{Line: 1, Column: 1}, Index: -1, Value: `"`,
			Expected: "a data value set (a JSON object) or an array"}},
		{"truncated value", `{"dataValues":[{"dataElement":"A"`, Options{}, transform.InputError{
			Pos: transform.Pos{Line: 1, Column: 34, Path: "dataValues[0]"}, Index: 0, Expected: `"," or "}", found the end of the input`}},
		{"truncated string", "{\"dataValues\":[{\"dataElement\":\"AB", Options{}, transform.InputError{
			Pos: transform.Pos{Line: 1, Column: 34, Path: "dataValues[0].dataElement"}, Index: 0, Field: "dataElement",
			Expected: "a closing quote, found the end of the input"}},
		{"bad literal", `{"dataValues":[{"dataElement":"A","value":tru}]}`, Options{}, transform.InputError{
			Pos: transform.Pos{Line: 1, Column: 43, Path: "dataValues[0].value"}, Index: 0, Field: "value", Value: "tru", Expected: "a JSON value"}},
		{"leading zero", `[{"value":012}]`, Options{}, transform.InputError{
			Pos: transform.Pos{Line: 1, Column: 11, Path: "[0].value"}, Index: 0, Field: "value", Value: "01", Expected: "without leading zeros"}},
		{"number without fraction digits", `[{"value":1.}]`, Options{}, transform.InputError{
			Pos: transform.Pos{Line: 1, Column: 11, Path: "[0].value"}, Index: 0, Field: "value", Value: "1.}", Expected: "a number such as"}},
		{"number without exponent digits", `[{"value":1e+}]`, Options{}, transform.InputError{
			Pos: transform.Pos{Line: 1, Column: 11, Path: "[0].value"}, Index: 0, Field: "value", Value: "1e+}", Expected: "a number such as"}},
		{"plus sign", `[{"value":+1}]`, Options{}, transform.InputError{
			Pos: transform.Pos{Line: 1, Column: 11, Path: "[0].value"}, Index: 0, Field: "value", Value: "+", Expected: "a string, number or boolean"}},
		{"bad escape", `[{"comment":"a\x"}]`, Options{}, transform.InputError{
			Pos: transform.Pos{Line: 1, Column: 15, Path: "[0].comment"}, Index: 0, Field: "comment", Value: `\x`, Expected: "an escape sequence"}},
		{"bad unicode escape", `[{"comment":"\u12G4"}]`, Options{}, transform.InputError{
			Pos: transform.Pos{Line: 1, Column: 14, Path: "[0].comment"}, Index: 0, Field: "comment", Value: `\u12G4`, Expected: "four hex digits"}},
		{"lone high surrogate", `[{"comment":"\ud800x"}]`, Options{}, transform.InputError{
			Pos: transform.Pos{Line: 1, Column: 14, Path: "[0].comment"}, Index: 0, Field: "comment", Value: `\ud800`, Expected: "a low surrogate"}},
		{"high surrogate then a non-surrogate", `[{"comment":"\ud800\u0041"}]`, Options{}, transform.InputError{
			Pos: transform.Pos{Line: 1, Column: 20, Path: "[0].comment"}, Index: 0, Field: "comment", Value: `\u0041`, Expected: "a low surrogate"}},
		{"lone low surrogate", `[{"comment":"\udc00"}]`, Options{}, transform.InputError{
			Pos: transform.Pos{Line: 1, Column: 14, Path: "[0].comment"}, Index: 0, Field: "comment", Value: `\udc00`, Expected: "a high surrogate"}},
		{"raw control character", "[{\"comment\":\"a\tb\"}]", Options{}, transform.InputError{
			Pos: transform.Pos{Line: 1, Column: 15, Path: "[0].comment"}, Index: 0, Field: "comment", Value: "control character U+0009",
			Expected: "control characters must be escaped"}},
		{"invalid UTF-8", "[{\"comment\":\"ab\xff\"}]", Options{}, transform.InputError{
			Pos: transform.Pos{Line: 1, Column: 16, Path: "[0].comment"}, Index: 0, Field: "comment", Value: "byte 0xff", Expected: "UTF-8 text"}},
		{"trailing comma in array", `[{"value":"1"},]`, Options{}, transform.InputError{
			Pos: transform.Pos{Line: 1, Column: 16, Path: "[1]"}, Index: 1, Value: "]", Expected: "a data value (a JSON object)"}},
		{"trailing comma in object", `{"dataSet":"x",}`, Options{}, transform.InputError{
			Pos: transform.Pos{Line: 1, Column: 16}, Index: -1, Value: "}", Expected: "a quoted member name"}},
		{"unquoted key", `{dataSet:"x"}`, Options{}, transform.InputError{
			Pos: transform.Pos{Line: 1, Column: 2}, Index: -1, Value: "d", Expected: "a quoted member name"}},
		{"missing colon", `{"dataSet" "x"}`, Options{}, transform.InputError{
			Pos: transform.Pos{Line: 1, Column: 12, Path: "dataSet"}, Index: -1, Field: "dataSet", Value: `"`, Expected: `":" after the member name`}},
		{"content after the set", "{}\n{}", Options{}, transform.InputError{
			Pos: transform.Pos{Line: 2, Column: 1}, Index: -1, Value: "{", Expected: "the end of the input"}},
		{"object where a string belongs", "{\"dataValues\":[\n {\"dataElement\":{\"id\":\"A\"}}]}", Options{}, transform.InputError{
			Pos: transform.Pos{Line: 2, Column: 17, Path: "dataValues[0].dataElement"}, Index: 0, Field: "dataElement", Value: "{", Expected: "a string"}},
		{"array where a string belongs in the header", `{"period":["202401"]}`, Options{}, transform.InputError{
			Pos: transform.Pos{Line: 1, Column: 11, Path: "period"}, Index: -1, Field: "period", Value: "[", Expected: "a string"}},
		{"bad boolean", "[{},\n{\"dataElement\":\"A\", \"followup\": \"maybe\"}]", Options{}, transform.InputError{
			Pos: transform.Pos{Line: 2, Column: 33, Path: "[1].followup"}, Index: 1, Field: "followup", Value: "maybe", Expected: "true or false"}},
		{"number for deleted", `[{"deleted":1}]`, Options{}, transform.InputError{
			Pos: transform.Pos{Line: 1, Column: 13, Path: "[0].deleted"}, Index: 0, Field: "deleted", Value: "1", Expected: "true or false"}},
		{"bad id scheme", `{"orgUnitIdScheme":"FOO"}`, Options{}, transform.InputError{
			Pos: transform.Pos{Line: 1, Column: 20, Path: "orgUnitIdScheme"}, Index: -1, Field: "orgUnitIdScheme", Value: "FOO", Expected: "an id scheme"}},
		{"dataValues twice", `{"dataValues":[],"dataValues":[]}`, Options{}, transform.InputError{
			Pos: transform.Pos{Line: 1, Column: 18, Path: "dataValues"}, Index: -1, Field: "dataValues", Value: "dataValues", Expected: `one "dataValues" array`}},
		{"dataValues not an array", `{"dataValues":{}}`, Options{}, transform.InputError{
			Pos: transform.Pos{Line: 1, Column: 15, Path: "dataValues"}, Index: -1, Field: "dataValues", Value: "{", Expected: "an array of data values"}},
		{"header after more values than are held", "{\"dataValues\":[{\"dataElement\":\"A\"},{\"dataElement\":\"B\"},{\"dataElement\":\"C\"}],\n \"period\":\"202401\"}",
			Options{MaxHeldValues: 2}, transform.InputError{Pos: transform.Pos{Line: 2, Column: 2, Path: "period"}, Index: -1,
				Field: "period", Value: "202401", Expected: `header fields before "dataValues": this one follows more than 2 data values`}},
		{"id scheme after more values than are held", `{"dataValues":[{},{}],"idScheme":"CODE"}`, Options{MaxHeldValues: 1},
			transform.InputError{Pos: transform.Pos{Line: 1, Column: 23, Path: "idScheme"}, Index: -1, Field: "idScheme", Value: "CODE",
				Expected: `header fields before "dataValues"`}},
		{"dryRun after more values than are held", `{"dataValues":[{},{}],"dryRun":true}`, Options{MaxHeldValues: 1},
			transform.InputError{Pos: transform.Pos{Line: 1, Column: 23, Path: "dryRun"}, Index: -1, Field: "dryRun", Value: "true",
				Expected: `header fields before "dataValues"`}},
		{"attributeCategoryOptions after more values than are held", `{"dataValues":[{},{}],"attributeCategoryOptions":["A"]}`, Options{MaxHeldValues: 1},
			transform.InputError{Pos: transform.Pos{Line: 1, Column: 23, Path: "attributeCategoryOptions"}, Index: -1, Field: "attributeCategoryOptions",
				Value: "[A]", Expected: `header fields before "dataValues"`}},
		{"bad element in attributeCategoryOptions", `{"attributeCategoryOptions":["A",{}]}`, Options{},
			transform.InputError{Pos: transform.Pos{Line: 1, Column: 34, Path: "attributeCategoryOptions[1]"}, Index: -1, Field: "attributeCategoryOptions",
				Value: "{", Expected: "a string"}},
		{"nesting too deep", `{"x":` + deep + `}`, Options{}, transform.InputError{
			Pos: transform.Pos{Line: 1, Column: 69, Path: "x" + strings.Repeat("[0]", 63)}, Index: -1, Field: "x", Value: "[", Expected: "at most 64 levels of nesting"}},
		{"nesting bound is configurable", `[{"x":{"y":[]}}]`, Options{MaxDepth: 4}, transform.InputError{
			Pos: transform.Pos{Line: 1, Column: 12, Path: "[0].x.y"}, Index: 0, Field: "x", Value: "[", Expected: "at most 4 levels"}},
		{"error inside a skipped value names its path", `{"dataValues":[{"x":{"y":[1,2,nul]}}]}`, Options{}, transform.InputError{
			Pos: transform.Pos{Line: 1, Column: 31, Path: "dataValues[0].x.y[2]"}, Index: 0, Field: "x", Value: "nul", Expected: "a JSON value"}},
		{"string too long", `[{"comment":"` + strings.Repeat("x", 40) + `"}]`, Options{MaxTokenBytes: 32}, transform.InputError{
			Pos: transform.Pos{Line: 1, Column: 13, Path: "[0].comment"}, Index: 0, Field: "comment", Expected: "a string shorter than 32 bytes"}},
		{"escaped string too long", `[{"comment":"` + strings.Repeat(`\n`, 40) + `"}]`, Options{MaxTokenBytes: 32}, transform.InputError{
			Pos: transform.Pos{Line: 1, Column: 80, Path: "[0].comment"}, Index: 0, Field: "comment", Expected: "a string shorter than 32 bytes"}},
		{"number too long", `[{"value":` + strings.Repeat("9", 40) + `}]`, Options{MaxTokenBytes: 32}, transform.InputError{
			Pos: transform.Pos{Line: 1, Column: 11, Path: "[0].value"}, Index: 0, Field: "value", Expected: "a number shorter than 32 bytes"}},
		{"columns count characters", "[{\"comment\":\"ééé\",\"value\":x}]", Options{}, transform.InputError{
			Pos: transform.Pos{Line: 1, Column: 27, Path: "[0].value"}, Index: 0, Field: "value", Value: "x", Expected: "a string, number or boolean"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, wrap := range []func(io.Reader) io.Reader{func(r io.Reader) io.Reader { return r }, iotest.OneByteReader} {
				var s recSink
				e := inputError(t, DecodeJSON(wrap(strings.NewReader(tt.in)), &s, tt.opts))
				got := *e
				if !strings.Contains(got.Expected, tt.want.Expected) {
					t.Errorf("Expected %q, want it to contain %q", got.Expected, tt.want.Expected)
				}
				got.Expected = tt.want.Expected
				if got != tt.want {
					t.Errorf("got  %+v\nwant %+v\n(%v)", got, tt.want, e)
				}
			}
		})
	}
}

// TestDecodeJSONLongTokens crosses the buffer with tokens close to the limit.
func TestDecodeJSONLongTokens(t *testing.T) {
	long := strings.Repeat("é", 300_000)                  // 600 kB of two-byte runes
	esc := strings.Repeat(`\u00e9\ud83d\ude00\n`, 20_000) // escapes across refills
	in := `{"dataValues":[{"dataElement":"A","comment":"` + long + `","value":"1"},{"dataElement":"B","comment":"` + esc + `","value":"` +
		strings.Repeat("9", 1000) + `"}]}`
	var s recSink
	if err := DecodeJSON(strings.NewReader(in), &s, Options{}); err != nil {
		t.Fatal(err)
	}
	if len(s.values) != 2 || s.values[0].Comment != long || s.values[1].Comment != strings.Repeat("é😀\n", 20_000) ||
		len(s.values[1].Value) != 1000 {
		t.Errorf("long tokens not read back intact")
	}
	e := inputError(t, DecodeJSON(strings.NewReader(`[{"comment":"`+strings.Repeat("x", DefaultMaxTokenBytes+1)+`"}]`), &s, Options{}))
	if e.Path != "[0].comment" || !strings.Contains(e.Expected, "shorter than 1048576") {
		t.Errorf("got %v", e)
	}
}
