"""The caseledger domain: aggregates, their events and rules, and the policy data they obey.

Pure by design: only the standard library and eventsourcing's ``Aggregate``/``event``. No
framework, no database, no clock reads — business time always arrives as an argument, so
replaying history gives the same answers tomorrow as today.
"""
