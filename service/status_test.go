package service

import "testing"

func TestProgressText(t *testing.T) {
	for _, tc := range []struct {
		l    MailboxStatus
		want string
	}{
		{MailboxStatus{}, ""},
		{MailboxStatus{ToFetch: 6046, Fetched: 0}, "0/6046 fetched"},
		{MailboxStatus{ToFetch: 6046, Fetched: 1200, Rate: 350.4, ETASeconds: 14}, "1200/6046 fetched, 350 msg/s, ETA 14s"},
	} {
		if got := tc.l.ProgressText(); got != tc.want {
			t.Errorf("ProgressText(%+v) = %q, want %q", tc.l, got, tc.want)
		}
	}
}
