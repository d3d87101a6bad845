// The logs-ingestion sink with an existing data collection rule: Monitoring Metrics Publisher
// for the relay identity on that rule. Deployed at the rule's resource group.

targetScope = 'resourceGroup'

@description('Name of the existing data collection rule (in this module\'s resource group).')
param ruleName string

@description('Principal (object) id of the relay identity.')
param principalId string

var monitoringMetricsPublisher = '3913510d-42f4-4e42-8a64-420c390055eb'

resource rule 'Microsoft.Insights/dataCollectionRules@2022-06-01' existing = {
  name: ruleName
}

resource publisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(rule.id, principalId, monitoringMetricsPublisher)
  scope: rule
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisher)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

output ruleImmutableId string = rule.properties.immutableId
