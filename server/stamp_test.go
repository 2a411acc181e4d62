package server

import "testing"

func TestStampResult(t *testing.T) {
	tests := []struct {
		msg, method string
		private     bool
		want        string
	}{
		{`{"jsonrpc":"2.0","id":1,"result":{}}`, MethodPing, false, `{"jsonrpc":"2.0","id":1,"result":{"resultType":"complete"}}`},
		{`{"jsonrpc":"2.0","id":1,"result":{"tools":[]}}`, MethodToolsList, false, `{"jsonrpc":"2.0","id":1,"result":{"resultType":"complete","ttlMs":0,"cacheScope":"public","tools":[]}}`},
		{`{"jsonrpc":"2.0","id":1,"result":{"tools":[]}}`, MethodToolsList, true, `{"jsonrpc":"2.0","id":1,"result":{"resultType":"complete","ttlMs":0,"cacheScope":"private","tools":[]}}`},
		{`{"jsonrpc":"2.0","id":1,"result":{"resultType":"input_required"}}`, MethodToolsCall, false, `{"jsonrpc":"2.0","id":1,"result":{"resultType":"input_required"}}`},
	}
	for _, tt := range tests {
		if got := string(stampResult([]byte(tt.msg), tt.method, tt.private)); got != tt.want {
			t.Errorf("stampResult(%s, %s, %v) = %s, want %s", tt.msg, tt.method, tt.private, got, tt.want)
		}
	}
}
