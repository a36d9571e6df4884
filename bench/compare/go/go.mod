module gortcompare

go 1.19
