package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
)

// MaxBody bounds a request body.
const MaxBody = 64 << 10

// errBadJSON reports a body that is not the JSON a route takes.
var errBadJSON = errors.New("bad JSON")

// fieldError is a body whose field holds a value of the wrong form: a
// number where the API takes a decimal string, a time that is not RFC 3339.
// The problem names the field.
type fieldError struct {
	field, want, got string
	limit, value     string
}

func (e *fieldError) Error() string {
	if e.got == "" {
		return fmt.Sprintf("%s: %s", e.field, e.want)
	}
	return fmt.Sprintf("%s: %s, not %s", e.field, e.want, e.got)
}

func (e *fieldError) Unwrap() error { return errBadJSON }

// readBody reads the whole body within MaxBody.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, &limitError{err: fmt.Errorf("%w: body over %d bytes", errBadJSON, MaxBody), field: "body", limit: strconv.Itoa(MaxBody), value: "more"}
		}
		return nil, fmt.Errorf("%w: %v", errBadJSON, err)
	}
	return b, nil
}

// decodeStrict decodes exactly one JSON value with no unknown fields. A
// field of the wrong form is a fieldError naming it: money and quantities
// are decimal strings ("100000000"), never JSON numbers; times are RFC 3339
// strings.
func decodeStrict(b []byte, v any) error {
	d := json.NewDecoder(bytesReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := d.Token(); err != io.EOF {
		return fmt.Errorf("%w: data after the JSON value", errBadJSON)
	}
	return nil
}

var typeUnits = reflect.TypeFor[Units]()

// jsonError turns a decoding error into the API's words.
func jsonError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		got := te.Value
		switch te.Type {
		case typeUnits, typeWideUnits:
			return &fieldError{field: te.Field, want: "a decimal string of whole base units (\"100000000\"), as every amount, price and quantity", got: got}
		case typeTime:
			return &fieldError{field: te.Field, want: "an RFC 3339 time (\"2026-01-26T09:00:00Z\")", got: got}
		}
		want := "a " + kindName(te.Type)
		return &fieldError{field: te.Field, want: want, got: got}
	}
	msg := strings.TrimPrefix(err.Error(), "json: ")
	return fmt.Errorf("%w: %s", errBadJSON, msg)
}

// kindName names what a Go type takes in JSON.
func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "whole number"
	case reflect.Slice, reflect.Array:
		return "list"
	case reflect.Map, reflect.Struct:
		return "object"
	}
	return "value of another form"
}
