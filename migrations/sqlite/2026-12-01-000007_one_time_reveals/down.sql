DROP TABLE one_time_reveals;
