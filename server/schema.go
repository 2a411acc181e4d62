package server

import (
	"encoding/json"
	"fmt"

	"github.com/erlmcp/erlmcp-go/codec"
	"github.com/google/jsonschema-go/jsonschema"
)

// compileSchema parses and resolves a JSON Schema once, at registration. Schemas without
// $schema are read as draft 2020-12, as MCP 2025-11-25 specifies.
func compileSchema(raw json.RawMessage) (*jsonschema.Resolved, error) {
	var sch jsonschema.Schema
	if err := json.Unmarshal(raw, &sch); err != nil {
		return nil, fmt.Errorf("not a JSON Schema: %w", err)
	}
	return sch.Resolve(&jsonschema.ResolveOptions{ValidateDefaults: false})
}

// validateArgs checks a raw arguments object against a compiled schema. Absent arguments
// are checked as {}. fast, when not nil, vouches for valid arguments in one walk over the
// bytes (fastschema.go); what it cannot vouch for is decoded and checked by jsonschema-go,
// which gives the verdict and the error message.
func validateArgs(rs *jsonschema.Resolved, fast *fastSchema, args json.RawMessage) error {
	if fast != nil && fast.accepts(args) {
		return nil
	}
	var v any = map[string]any{}
	if len(args) > 0 && string(args) != "null" {
		if err := codec.Unmarshal(args, &v); err != nil {
			return fmt.Errorf("arguments are not JSON: %w", err)
		}
	}
	if _, ok := v.(map[string]any); !ok {
		return fmt.Errorf("arguments must be a JSON object")
	}
	return rs.Validate(v)
}

// validateValue checks a Go value against a schema by way of its JSON form; fast as in
// validateArgs.
func validateValue(rs *jsonschema.Resolved, fast *fastSchema, val any) error {
	b, err := codec.Marshal(val)
	if err != nil {
		return err
	}
	if fast != nil && fast.acceptsValue(b) {
		return nil
	}
	var v any
	if err := codec.Unmarshal(b, &v); err != nil {
		return err
	}
	return rs.Validate(v)
}
