module github.com/faultline-proxy/faultline

go 1.26.8

require golang.org/x/sys v0.49.0

require (
	go.uber.org/goleak v1.3.0 // indirect
	golang.org/x/net v0.62.0 // indirect
)
