DROP TABLE deleted_customers;
