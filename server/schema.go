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
// are checked as {}.
func validateArgs(rs *jsonschema.Resolved, args json.RawMessage) error {
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

// validateValue checks a Go value against a schema by way of its JSON form.
func validateValue(rs *jsonschema.Resolved, val any) error {
	b, err := codec.Marshal(val)
	if err != nil {
		return err
	}
	var v any
	if err := codec.Unmarshal(b, &v); err != nil {
		return err
	}
	return rs.Validate(v)
}
