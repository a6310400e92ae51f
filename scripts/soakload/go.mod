module soakload

go 1.19
