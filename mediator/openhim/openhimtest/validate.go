package openhimtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/tally-hmis/tally/mediator/openhim/internal/semver"
)

// The rules below follow the core's addMediator, validateConfigDef(s), validateConfig and
// validateConfigField (spec §4; jembi/openhim-core-js src/api/mediators.js), evaluated with
// JavaScript semantics on the decoded JSON (truthiness, typeof, strict equality). The
// mongoose schema checks applied to a new mediator are a documented subset (see
// schemaErrors). Object keys are visited in sorted order, where JavaScript would use
// insertion order, so a body with several faults reports a deterministic one.

// validationError is the core's ValidationError; the handler prefixes it as the core does.
type validationError struct{ msg string }

func (e *validationError) Error() string { return "ValidationError: " + e.msg }

func verr(format string, args ...any) error {
	return &validationError{msg: fmt.Sprintf(format, args...)}
}

// ValidateRegistration applies to a POST /mediators body every check the core makes for a
// new mediator, without any stored state. It returns nil, or an error whose text is the
// message the core would send with its 400.
func ValidateRegistration(body []byte) error {
	var doc any
	if err := json.Unmarshal(body, &doc); err != nil {
		return fmt.Errorf("invalid JSON: %w", err)
	}
	m, ok := doc.(map[string]any)
	if !ok {
		return errors.New("invalid JSON, only supports object")
	}
	if err := checkMediator(m); err != nil {
		return addMediatorMessage(err)
	}
	if err := checkNewMediator(m); err != nil {
		return addMediatorMessage(err)
	}
	return nil
}

func addMediatorMessage(err error) error {
	return errors.New("Could not add Mediator via the API: " + err.Error())
}

// checkMediator is the part of addMediator that runs before the stored mediator is looked up
// (spec §4 rules 3-5).
func checkMediator(m map[string]any) error {
	if !truthy(m["urn"]) {
		return verr("URN is required")
	}
	v, isString := m["version"].(string)
	if !truthy(m["version"]) || !isString || !semver.Valid(v) {
		return verr("Version is required. Must be in SemVer form x.y.z")
	}
	if truthy(m["configDefs"]) {
		defs, _ := m["configDefs"].([]any)
		for _, d := range defs {
			if err := checkConfigDef(asObject(d)); err != nil {
				return err
			}
		}
		if m["config"] != nil {
			if err := checkConfig(defs, m["config"]); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkNewMediator is what runs only when the urn is new (spec §4 rule 7).
func checkNewMediator(m map[string]any) error {
	eps, _ := m["endpoints"].([]any)
	if !truthy(m["endpoints"]) || len(eps) < 1 {
		return verr("At least 1 endpoint is required")
	}
	if errs := schemaErrors(m); len(errs) > 0 {
		return verr("Mediator validation failed: %s", strings.Join(errs, ", "))
	}
	return nil
}

func checkConfigDef(def map[string]any) error {
	param := jsString(def["param"])
	switch def["type"] {
	case "struct":
		if !truthy(def["template"]) {
			return verr("Must specify a template for struct param '%s'", param)
		}
		items, _ := def["template"].([]any)
		for _, it := range items {
			item := asObject(it)
			if !truthy(item["param"]) {
				return verr("Must specify field 'param' in template definition for param '%s'", param)
			}
			if !truthy(item["type"]) {
				return verr("Must specify field 'type' in template definition for param '%s'", param)
			}
			if item["type"] == "struct" {
				return verr("May not recursively specify 'struct' in template definitions (param '%s')", param)
			}
		}
	case "option":
		values, isArray := def["values"].([]any)
		if !isArray {
			return verr("Expected field 'values' to be an array (option param '%s')", param)
		}
		if len(values) == 0 {
			return verr("Must specify a values array for option param '%s'", param)
		}
	}
	return nil
}

// checkConfig is validateConfig: every key needs a definition and a value of its type.
func checkConfig(defs []any, config any) error {
	cfg := asObject(config)
	for _, param := range sortedKeys(cfg) {
		var matching []map[string]any
		for _, d := range defs {
			if def := asObject(d); def["param"] == param {
				matching = append(matching, def)
			}
		}
		if len(matching) == 0 {
			return verr("No config definition found for parameter %s", param)
		}
		for _, def := range matching {
			if truthy(def["array"]) {
				list, isArray := cfg[param].([]any)
				if !isArray {
					return verr("Expected config param %s to be an array of type %s", param, jsString(def["type"]))
				}
				for i, f := range list {
					if err := checkConfigField(fmt.Sprintf("%s[%d]", param, i), def, f); err != nil {
						return err
					}
				}
				continue
			}
			if err := checkConfigField(param, def, cfg[param]); err != nil {
				return err
			}
		}
	}
	return nil
}

func checkConfigField(param string, def map[string]any, field any) error {
	switch def["type"] {
	case "string":
		if typeOf(field) != "string" {
			return verr("Expected config param %s to be a string.", param)
		}
	case "bigstring":
		if typeOf(field) != "string" {
			return verr("Expected config param %s to be a large string.", param)
		}
	case "number":
		if typeOf(field) != "number" {
			return verr("Expected config param %s to be a number.", param)
		}
	case "bool":
		if typeOf(field) != "boolean" {
			return verr("Expected config param %s to be a boolean.", param)
		}
	case "option":
		values, _ := def["values"].([]any)
		if !slices.ContainsFunc(values, func(v any) bool { return strictEqual(v, field) }) {
			return verr("Expected config param %s to be one of %s", param, jsString(def["values"]))
		}
	case "map":
		if typeOf(field) != "object" {
			return verr("Expected config param %s to be an object.", param)
		}
		for _, v := range members(field) {
			if typeOf(v) != "string" {
				return verr("Expected config param %s to only contain string values.", param)
			}
		}
	case "struct":
		if typeOf(field) != "object" {
			return verr("Expected config param %s to be an object.", param)
		}
		var fields []string
		tmpl, _ := def["template"].([]any)
		for _, t := range tmpl {
			fields = append(fields, jsString(asObject(t)["param"]))
		}
		for _, k := range memberKeys(field) {
			if !slices.Contains(fields, k) {
				return verr("Field %s is not defined in template definition for config param %s.", k, param)
			}
		}
	case "password":
		if typeOf(field) != "string" {
			return verr("Expected config param %s to be a string representing a password.", param)
		}
	}
	return nil
}

// Schema enums (CORE src/model/channels.js, mediators.js), as functions so no package
// state can be altered.
func routeTypes() []string   { return []string{"http", "kafka"} }
func routeStatus() []string  { return []string{"enabled", "disabled"} }
func channelTypes() []string { return []string{"http", "tcp", "tls", "polling"} }
func httpMethods() []string {
	return []string{"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
}
func authTypes() []string  { return []string{"private", "public"} }
func chanStatus() []string { return []string{"enabled", "disabled", "deleted"} }
func configTypes() []string {
	return []string{"string", "bool", "number", "option", "bigstring", "map", "struct", "password"}
}

// schemaErrors is the subset of mongoose validation the fake applies to a new mediator:
// required names and urlPatterns, enums, and numeric ranges, with mongoose's messages.
func schemaErrors(m map[string]any) []string {
	var errs []string
	required(&errs, "", m, "name")
	for i, e := range asList(m["endpoints"]) {
		routeErrors(&errs, fmt.Sprintf("endpoints.%d.", i), asObject(e))
	}
	for i, c := range asList(m["defaultChannelConfig"]) {
		p := fmt.Sprintf("defaultChannelConfig.%d.", i)
		ch := asObject(c)
		required(&errs, p, ch, "name")
		required(&errs, p, ch, "urlPattern")
		enum(&errs, p, ch, "type", channelTypes())
		enum(&errs, p, ch, "authType", authTypes())
		enum(&errs, p, ch, "status", chanStatus())
		for j, meth := range asList(ch["methods"]) {
			if s := jsString(meth); !slices.Contains(httpMethods(), s) {
				errs = append(errs, fmt.Sprintf("%smethods.%d: `%s` is not a valid enum value for path `methods`.", p, j, s))
			}
		}
		number(&errs, p, ch, "priority", 1, math.Inf(1))
		number(&errs, p, ch, "timeout", 1, 3600000)
		number(&errs, p, ch, "maxBodyAgeDays", 1, 36500)
		for j, r := range asList(ch["routes"]) {
			routeErrors(&errs, fmt.Sprintf("%sroutes.%d.", p, j), asObject(r))
		}
	}
	for i, d := range asList(m["configDefs"]) {
		enum(&errs, fmt.Sprintf("configDefs.%d.", i), asObject(d), "type", configTypes())
	}
	return errs
}

func routeErrors(errs *[]string, p string, r map[string]any) {
	required(errs, p, r, "name")
	enum(errs, p, r, "type", routeTypes())
	enum(errs, p, r, "status", routeStatus())
	number(errs, p, r, "port", 0, 65536)
}

func required(errs *[]string, prefix string, obj map[string]any, key string) {
	if v, ok := obj[key]; !ok || v == nil || v == "" {
		*errs = append(*errs, fmt.Sprintf("%s%s: Path `%s` is required.", prefix, key, key))
	}
}

func enum(errs *[]string, prefix string, obj map[string]any, key string, allowed []string) {
	v, ok := obj[key]
	if !ok || v == nil {
		return
	}
	if s := jsString(v); !slices.Contains(allowed, s) {
		*errs = append(*errs, fmt.Sprintf("%s%s: `%s` is not a valid enum value for path `%s`.", prefix, key, s, key))
	}
}

func number(errs *[]string, prefix string, obj map[string]any, key string, lo, hi float64) {
	v, ok := obj[key]
	if !ok || v == nil {
		return
	}
	var n float64
	switch x := v.(type) {
	case float64:
		n = x
	case string: // mongoose casts numeric strings ("3000")
		f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		if err != nil || strings.TrimSpace(x) == "" {
			*errs = append(*errs, fmt.Sprintf("%s%s: Cast to Number failed for value \"%s\" (type string) at path \"%s\"", prefix, key, x, key))
			return
		}
		n = f
	default:
		*errs = append(*errs, fmt.Sprintf("%s%s: Cast to Number failed for value %s at path \"%s\"", prefix, key, jsString(v), key))
		return
	}
	if n < lo {
		*errs = append(*errs, fmt.Sprintf("%s%s: Path `%s` (%s) is less than minimum allowed value (%s).", prefix, key, key, jsNumber(n), jsNumber(lo)))
	}
	if n > hi {
		*errs = append(*errs, fmt.Sprintf("%s%s: Path `%s` (%s) is more than maximum allowed value (%s).", prefix, key, key, jsNumber(n), jsNumber(hi)))
	}
}

const passwordMask = "**********"

// maskPasswords replaces password-typed values as GET /mediators/:urn does.
func maskPasswords(defs []any, config map[string]any) {
	if config == nil {
		return
	}
	for _, d := range defs {
		def := asObject(d)
		param := jsString(def["param"])
		if def["type"] == "password" && truthy(config[param]) {
			if truthy(def["array"]) {
				list := asList(config[param])
				masked := make([]any, len(list))
				for i := range masked {
					masked[i] = passwordMask
				}
				config[param] = masked
			} else {
				config[param] = passwordMask
			}
		}
		if def["type"] == "struct" && truthy(config[param]) {
			tmpl, _ := def["template"].([]any)
			maskPasswords(tmpl, asObject(config[param]))
		}
	}
}

// restoreMaskedPasswords puts stored passwords back where the console sent the mask.
func restoreMaskedPasswords(defs []any, masked, stored map[string]any) {
	if masked == nil || stored == nil {
		return
	}
	for _, d := range defs {
		def := asObject(d)
		param := jsString(def["param"])
		if def["type"] == "password" && truthy(masked[param]) && truthy(stored[param]) {
			if truthy(def["array"]) {
				ml, sl := asList(masked[param]), asList(stored[param])
				for i, p := range ml {
					if p == passwordMask && i < len(sl) {
						ml[i] = sl[i]
					}
				}
			} else if masked[param] == passwordMask {
				masked[param] = stored[param]
			}
		}
		if def["type"] == "struct" && truthy(masked[param]) && truthy(stored[param]) {
			tmpl, _ := def["template"].([]any)
			restoreMaskedPasswords(tmpl, asObject(masked[param]), asObject(stored[param]))
		}
	}
}

// JavaScript semantics over encoding/json values.

func truthy(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	case float64:
		return x != 0 && !math.IsNaN(x)
	case string:
		return x != ""
	}
	return true
}

func typeOf(v any) string {
	switch v.(type) {
	case bool:
		return "boolean"
	case float64:
		return "number"
	case string:
		return "string"
	}
	return "object" // null, arrays and objects
}

func strictEqual(a, b any) bool {
	switch x := a.(type) {
	case string, float64, bool:
		return x == b
	}
	return false // objects compare by identity; decoded JSON never shares one
}

func jsString(v any) string {
	switch x := v.(type) {
	case nil:
		return "undefined"
	case string:
		return x
	case float64:
		return jsNumber(x)
	case bool:
		return strconv.FormatBool(x)
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			if e != nil {
				parts[i] = jsString(e)
			}
		}
		return strings.Join(parts, ",")
	}
	return "[object Object]"
}

func jsNumber(f float64) string {
	if math.IsInf(f, 1) {
		return "Infinity"
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

func asObject(v any) map[string]any {
	if m, ok := v.(map[string]any); ok {
		return m
	}
	return map[string]any{}
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// members and memberKeys iterate like JavaScript's for…in over an object or array.
func members(v any) []any {
	switch x := v.(type) {
	case map[string]any:
		out := make([]any, 0, len(x))
		for _, k := range sortedKeys(x) {
			out = append(out, x[k])
		}
		return out
	case []any:
		return x
	}
	return nil
}

func memberKeys(v any) []string {
	switch x := v.(type) {
	case map[string]any:
		return sortedKeys(x)
	case []any:
		keys := make([]string, len(x))
		for i := range x {
			keys[i] = strconv.Itoa(i)
		}
		return keys
	}
	return nil
}
