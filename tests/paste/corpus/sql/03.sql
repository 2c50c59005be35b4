insert into accounts (email, plan) values ('a@example.com', 'free');
update accounts set plan = 'prime' where email = 'a@example.com';
delete from sessions where expires_at < now();
select count(*) from accounts where plan = 'prime';
