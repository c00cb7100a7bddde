package dhis2test

import (
	"net/mail"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Error code messages of DHIS2's ErrorCode enum for data import (spec
// dhis2.md §1.5, conformance README §6.1). {n} are MessageFormat arguments.
var errorMessages = map[string]string{
	"E7600": "Data set not found or not accessible: `{0}`",
	"E7601": "User does not have write access for DataSet: `{0}`",
	"E7602": "A valid dataset is required",
	"E7603": "Org unit not found or not accessible: `{0}`",
	"E7604": "Attribute option combo not found or not accessible: `{0}`",
	"E7610": "Data element not found or not accessible: `{0}`",
	"E7611": "Period not valid: `{0}`",
	"E7612": "Organisation unit not found or not accessible: `{0}`",
	"E7613": "Category option combo not found or not accessible for writing data: `{0}`",
	"E7614": "Category option combo: `{0}` option not accessible: `{1}`",
	"E7615": "Attribute option combo not found or not accessible for writing data: `{0}`",
	"E7616": "Attribute option combo: `{0}` option not accessible: `{1}`",
	"E7617": "Organisation unit: `{0}` not in hierarchy of current user: `{1}`",
	"E7618": "Data value or comment not specified for data element: `{0}`",
	"E7619": "Value must match value type of data element `{0}`: `{1}`",
	"E7620": "Invalid comment: {0}",
	"E7621": "Data value is not a valid option of the data element option set: `{0}`",
	"E7630": "Category option combo is required but is not specified",
	"E7631": "Attribute option combo is required but is not specified",
	"E7632": "Period type of period: `{0}` not valid for data element: `{1}`",
	"E7633": "Data element: `{0}` is not part of dataset(s): `{1}`",
	"E7634": "Category option combo: `{0}` must be part of category combo of data element: `{1}`",
	"E7635": "Attribute option combo: `{0}` must be part of category combo of data sets of data element: `{1}`",
	"E7636": "Data element: `{1}` must be assigned through data sets to organisation unit: `{0}`",
	"E7637": "Invalid storedBy: {0}",
	"E7638": "Period: `{0}` is not within date range of attribute option combo: `{1}`",
	"E7639": "Organisation unit: `{0}` is not valid for attribute option combo: `{1}`",
	"E7640": "Current date is past expiry days for period: `{0}`  and data set: `{1}`",
	"E7641": "Period: `{0}` is after latest open future period: `{2}` for data element: `{1}`",
	"E7642": "Data already approved for data set: `{3}` period: `{1}` org unit: `{0}` attribute option combo: `{2}`",
	"E7643": "Period: `{0}` is not open for this data set at this time: `{1}`",
	"E7644": "Period: `{0}` does not conform to the open periods of associated data sets",

	// 2.43+ data entry pipeline (spec dhis2.md §1.6, README §6.2)
	"E8000": "Import aborted as atomic, {0} value(s) were invalid",
	"E8001": "Data set not found: `{0}`",
	"E8003": "Data set detection failed, found no set for data element(s): `{0}`",
	"E8020": "Data set {0} not usable with data element(s): `{1}`",
	"E8021": "Data set {0} not usable with period(s): `{1}`",
	"E8022": "Data set {0} not usable with org unit(s): `{1}`",
	"E8023": "Data set {0} not usable with attribute option combo(s): `{1}`",
	"E8024": "Data set {0} + data element {1} not usable with category option combo(s): `{2}`",
	"E8034": "Deletion scope is invalid, {0} not found: `{1}`",
	"E8103": "Value #{0} data element not found: `{1}`",
	"E8107": "Value #{0} org unit not found: `{1}`",
	"E8108": "Value #{0} category option combo not found: `{1}`",
	"E8110": "Value #{0} attribute option combo not found: `{1}`",
	"E8121": "Value #{0} value or comment is required",
	"E8122": "Value #{0} value `{1}` is no valid {2}",
	"E8123": "Value #{0} value `{1}` is no valid option of the data element option set",
	"E8128": "Value #{0} all affect the same data value: `{1}`",
}

func formatMessage(code string, args ...string) string {
	msg := errorMessages[code]
	for i, a := range args {
		msg = strings.ReplaceAll(msg, "{"+strconv.Itoa(i)+"}", a)
	}
	return msg
}

// i18n texts for ValidationUtils error keys (best effort; the key is used
// when no text is known, as DHIS2 does for untranslated keys).
var i18nTexts = map[string]string{
	"value_not_numeric":                       "Data value is not numeric",
	"value_not_unit_interval":                 "Data value is not a unit interval",
	"value_not_percentage":                    "Data value is not a percentage",
	"value_not_integer":                       "Data value is not an integer",
	"value_not_positive_integer":              "Data value is not a positive integer",
	"value_not_negative_integer":              "Data value is not a negative integer",
	"value_not_zero_or_positive_integer":      "value_not_zero_or_positive_integer",
	"value_not_bool":                          "Data value is not a boolean",
	"value_not_true_only":                     "Data value is not true (true-only value type)",
	"value_not_valid_date":                    "Data value is not a valid date",
	"value_not_valid_datetime":                "Data value is not a valid date time",
	"value_not_valid_time":                    "Data value is not a valid time",
	"value_not_coordinate":                    "Data value is not a coordinate",
	"value_not_url":                           "Data value is not a valid URL",
	"value_not_valid_email":                   "Data value is not a valid email",
	"value_not_valid_phone_number":            "Data value is not a valid phone number",
	"value_not_valid_letter":                  "Data value is not a valid letter",
	"value_not_valid_uid":                     "Data value is not a valid UID",
	"value_length_greater_than_max_length":    "Data value is longer than the maximum length",
	"comment_length_greater_than_max_length":  "Comment is longer than the maximum length",
	"storedby_length_greater_than_max_length": "Stored by is longer than the maximum length",
}

func i18n(key string) string {
	if t, ok := i18nTexts[key]; ok {
		return t
	}
	return key
}

var (
	reNumber       = regexp.MustCompile(`^[-+]?(0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?$`)
	reInteger      = regexp.MustCompile(`^(0|-?[1-9]\d*)$`)
	rePosInt       = regexp.MustCompile(`^[1-9]\d*$`)
	reNegInt       = regexp.MustCompile(`^-[1-9]\d*$`)
	reZeroOrPosInt = regexp.MustCompile(`^(0|[1-9]\d*)$`)
	reZero         = regexp.MustCompile(`^[-+]?0+(\.0*)?$`)
	reTime         = regexp.MustCompile(`^([01]\d|2[0-3]):[0-5]\d$`)
	rePhone        = regexp.MustCompile(`^[0-9+\-() ]{1,50}$`)
	reCoordinate   = regexp.MustCompile(`^\[\s*-?\d+(\.\d+)?\s*,\s*-?\d+(\.\d+)?\s*\]$`)
)

const (
	maxTextLength    = 50000
	maxCommentLength = 50000
	maxStoredBy      = 255
)

// normaliseValue returns the value DHIS2 stores for valueType (booleans are
// normalised; spec dhis2.md §1.4 "Boolean values accepted").
func normaliseValue(valueType, v string) string {
	switch valueType {
	case "BOOLEAN":
		switch strings.ToLower(v) {
		case "true", "1", "t":
			return "true"
		case "false", "0", "f":
			return "false"
		}
	case "TRUE_ONLY":
		switch strings.ToLower(v) {
		case "true", "1", "t":
			return "true"
		}
	}
	return v
}

// valueError returns DHIS2's ValidationUtils error key for v (already
// normalised), or "" when v is valid for valueType.
func valueError(valueType, v string) string {
	switch valueType {
	case "NUMBER":
		if !reNumber.MatchString(v) {
			return "value_not_numeric"
		}
	case "UNIT_INTERVAL":
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || !reNumber.MatchString(v) || f < 0 || f > 1 {
			return "value_not_unit_interval"
		}
	case "PERCENTAGE":
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || !reNumber.MatchString(v) || f < 0 || f > 100 {
			return "value_not_percentage"
		}
	case "INTEGER":
		if !reInteger.MatchString(v) || !fitsInt32(v) {
			return "value_not_integer"
		}
	case "INTEGER_POSITIVE":
		if !rePosInt.MatchString(v) || !fitsInt32(v) {
			return "value_not_positive_integer"
		}
	case "INTEGER_NEGATIVE":
		if !reNegInt.MatchString(v) || !fitsInt32(v) {
			return "value_not_negative_integer"
		}
	case "INTEGER_ZERO_OR_POSITIVE":
		if !reZeroOrPosInt.MatchString(v) || !fitsInt32(v) {
			return "value_not_zero_or_positive_integer"
		}
	case "BOOLEAN":
		if v != "true" && v != "false" {
			return "value_not_bool"
		}
	case "TRUE_ONLY":
		if v != "true" {
			return "value_not_true_only"
		}
	case "DATE", "AGE":
		if _, err := time.Parse("2006-01-02", v); err != nil {
			return "value_not_valid_date"
		}
	case "DATETIME":
		if !validDateTime(v) {
			return "value_not_valid_datetime"
		}
	case "TIME":
		if !reTime.MatchString(v) {
			return "value_not_valid_time"
		}
	case "TEXT":
		if len([]rune(v)) > maxTextLength {
			return "value_length_greater_than_max_length"
		}
	case "LETTER":
		if r := []rune(v); len(r) != 1 || !(('a' <= r[0] && r[0] <= 'z') || ('A' <= r[0] && r[0] <= 'Z')) {
			return "value_not_valid_letter"
		}
	case "EMAIL":
		if _, err := mail.ParseAddress(v); err != nil {
			return "value_not_valid_email"
		}
	case "PHONE_NUMBER":
		if !rePhone.MatchString(v) {
			return "value_not_valid_phone_number"
		}
	case "URL":
		if u, err := url.Parse(v); err != nil || u.Scheme == "" || u.Host == "" {
			return "value_not_url"
		}
	case "COORDINATE":
		if !reCoordinate.MatchString(v) {
			return "value_not_coordinate"
		}
	case "FILE_RESOURCE", "IMAGE", "ORGANISATION_UNIT", "REFERENCE":
		if !IsUID(v) {
			return "value_not_valid_uid"
		}
	}
	return ""
}

func fitsInt32(v string) bool {
	n, err := strconv.ParseInt(v, 10, 64)
	return err == nil && n >= -2147483648 && n <= 2147483647
}

func validDateTime(v string) bool {
	for _, layout := range []string{"2006-01-02T15:04:05.000Z0700", "2006-01-02T15:04:05Z07:00", "2006-01-02T15:04:05",
		"2006-01-02T15:04:05.000", "2006-01-02T15:04", "2006-01-02 15:04:05", "2006-01-02"} {
		if _, err := time.Parse(layout, v); err == nil {
			return true
		}
	}
	return false
}

// zeroInsignificant: a numeric zero for a data element that does not store
// zeros (spec dhis2.md §1.4; averages keep zeros).
func zeroInsignificant(de *DataElement, v string) bool {
	return numericTypes[de.ValueType] && !de.ZeroIsSignificant && reZero.MatchString(v) &&
		!strings.HasPrefix(de.AggregationType, "AVERAGE")
}
