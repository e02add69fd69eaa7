DROP INDEX state_changes_subject;
