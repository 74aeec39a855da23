package deploy

import (
	"reflect"
	"testing"
)

func TestRenameHosts(t *testing.T) {
	tests := []struct {
		hosts     []string
		old, new_ string
		want      []string
	}{
		{[]string{"test.shop.example.com"}, "test", "testnew", []string{"testnew.shop.example.com"}},
		{[]string{"shop.example.com", "www.shop.example.com"}, "prod", "testnew", []string{"testnew.shop.example.com", "testnew.www.shop.example.com"}},
		{[]string{"*.test.shop.localhost"}, "test", "testold", []string{"*.testold.shop.localhost"}},
		{[]string{"testing.shop.localhost"}, "test", "testold", []string{"testold.testing.shop.localhost"}},
	}
	for _, tt := range tests {
		if got := renameHosts(tt.hosts, tt.old, tt.new_); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("renameHosts(%v, %s, %s) = %v, want %v", tt.hosts, tt.old, tt.new_, got, tt.want)
		}
	}
}

func TestClassify(t *testing.T) {
	tests := []struct{ from, to, want string }{
		{"", "3.0.0", "deployment"},
		{"3.0.1", "3.0.4", "deployment"},
		{"3.0.4", "3.1.0", "migration"},
		{"2.9.9", "3.0.0", "migration"},
		{"16.03.1", "16.03.1b", "deployment"},
		{"16.03.1", "16.04.0", "migration"},
		{"v1.2.3", "1.2.4", "deployment"},
	}
	for _, tt := range tests {
		if got := classify(tt.from, tt.to); got != tt.want {
			t.Errorf("classify(%q, %q) = %s, want %s", tt.from, tt.to, got, tt.want)
		}
	}
}
