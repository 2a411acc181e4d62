package server

// Protocol versions the server speaks. The session era (initialize, Mcp-Session-Id) covers
// the first four; 2026-07-28 is the stateless era (server/discover, per-request _meta).
const (
	Version20241105 = "2024-11-05"
	Version20250326 = "2025-03-26"
	Version20250618 = "2025-06-18"
	Version20251125 = "2025-11-25"
	Version20260728 = "2026-07-28"

	// LatestSessionVersion is what initialize answers when the client asks for a version
	// we do not know, or none at all.
	LatestSessionVersion = Version20251125
	// LatestVersion is the newest version of either era.
	LatestVersion = Version20260728
)

// protoVersion is a negotiated version kept in one byte, so sessions stay small.
// The order is chronological: comparisons mean "at least this version".
type protoVersion uint8

const (
	protoUnknown protoVersion = iota
	proto20241105
	proto20250326
	proto20250618
	proto20251125
	proto20260728
)

var protoNames = [...]string{"", Version20241105, Version20250326, Version20250618, Version20251125, Version20260728}

func (v protoVersion) String() string { return protoNames[v] }

// parseVersion maps a version string to protoVersion; unknown strings give protoUnknown.
func parseVersion(s string) protoVersion {
	switch s {
	case Version20241105:
		return proto20241105
	case Version20250326:
		return proto20250326
	case Version20250618:
		return proto20250618
	case Version20251125:
		return proto20251125
	case Version20260728:
		return proto20260728
	}
	return protoUnknown
}

// SessionVersions lists the session-era versions, oldest first.
var SessionVersions = []string{Version20241105, Version20250326, Version20250618, Version20251125}

// negotiate picks the version initialize answers: the client's when we speak it and it
// belongs to the session era, else our latest session-era version (the client then
// decides whether it can go on).
func negotiate(requested string) protoVersion {
	v := parseVersion(requested)
	if v == protoUnknown || v >= proto20260728 {
		return proto20251125
	}
	return v
}

// batchesAllowed reports whether JSON-RPC batches are accepted: only 2025-03-26 had them
// (added then, removed in 2025-06-18).
func (v protoVersion) batchesAllowed() bool { return v == proto20250326 }

// LoggingLevel is a syslog severity as MCP names it.
type LoggingLevel string

// The MCP logging levels, least severe first.
const (
	LevelDebug     LoggingLevel = "debug"
	LevelInfo      LoggingLevel = "info"
	LevelNotice    LoggingLevel = "notice"
	LevelWarning   LoggingLevel = "warning"
	LevelError     LoggingLevel = "error"
	LevelCritical  LoggingLevel = "critical"
	LevelAlert     LoggingLevel = "alert"
	LevelEmergency LoggingLevel = "emergency"
)

// severity orders levels; 0 means unknown.
func (l LoggingLevel) severity() uint8 {
	switch l {
	case LevelDebug:
		return 1
	case LevelInfo:
		return 2
	case LevelNotice:
		return 3
	case LevelWarning:
		return 4
	case LevelError:
		return 5
	case LevelCritical:
		return 6
	case LevelAlert:
		return 7
	case LevelEmergency:
		return 8
	}
	return 0
}
