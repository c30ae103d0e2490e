package core

import (
	"reflect"
	"strconv"

	"kinko/internal/ledger"
)

// actorFields are the fields that name who gives a command, in the order
// they are looked for: on the command, then on its first-level structs (a
// request's requester, a session's operator, a ceremony's actor).
var actorFields = []string{"Actor", "Requester", "Decider", "Operator", "Detector", "By"}

// Actor returns who a command names as acting, for the audit log: an
// operator's name, "customer N" for a customer's command, or "" when it
// names nobody (the watcher's and the signer's commands, which their
// tokens give, and the host's setup). It reads only names and ids, never
// credentials or token hashes. It is not part of apply.
func Actor(c Command) string {
	v := reflect.ValueOf(c)
	if !v.IsValid() || v.Kind() != reflect.Struct {
		return ""
	}
	if a := actorIn(v); a != "" {
		return a
	}
	for i := 0; i < v.NumField(); i++ {
		if f := v.Field(i); f.Kind() == reflect.Struct && v.Type().Field(i).IsExported() {
			if a := actorIn(f); a != "" {
				return a
			}
		}
	}
	return ""
}

// actorIn looks for an actor field of one struct.
func actorIn(v reflect.Value) string {
	for _, name := range actorFields {
		if f := v.FieldByName(name); f.IsValid() && f.Kind() == reflect.String && f.String() != "" {
			return f.String()
		}
	}
	if f := v.FieldByName("Customer"); f.IsValid() && f.Type() == reflect.TypeOf(ledger.OwnerID(0)) && f.Uint() != 0 {
		return "customer " + strconv.FormatUint(f.Uint(), 10)
	}
	return ""
}
