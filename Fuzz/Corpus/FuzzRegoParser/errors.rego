package test
allow { true }
