DROP TABLE billing_event_deliveries;
DROP TABLE billing_events;
DROP TABLE billing_event_counters;
